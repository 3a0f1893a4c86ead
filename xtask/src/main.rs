//! Project tasks: `cargo xtask setup|build|demo|test`. Every task that needs the eBPF
//! toolchain runs `setup` first, so a fresh machine needs nothing but these commands.

mod bench;
mod cycles;
mod demo;
mod dist;
mod gates;
mod setup;
mod syscall_names;
mod util;
mod vmtest;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install, idempotently, what building and testing need (Debian packages, rust-src,
    /// bpf-linker).
    Setup,
    /// Set up, then build the release tracer and the workload program.
    Build,
    /// Set up, build, then trace a scripted login session (login UID 7005) and print its
    /// per-UID report.
    Demo,
    /// Set up, build (release), then measure the tracer against no tracing, auditd and
    /// strace; writes BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Regenerate tracer-rules/src/syscalls/table.rs (audit's syscall names) from the installed
    /// `ausyscall`.
    SyscallNames,
    /// Set up, check formatting and clippy (warnings are errors), build, then run every test
    /// (as root: the tests load the real programs).
    Test {
        /// Extra arguments for `cargo test`, with or without a leading `--` (e.g.
        /// `-p tracer-tests --test trace`, or a test name filter). With `-p`, only those
        /// packages; else the whole workspace.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the release tracer and install it with its systemd units, man pages, shell
    /// completions and default configuration into $DESTDIR$PREFIX (default /usr/local).
    Install(dist::InstallArgs),
    /// Build a Debian package (PREFIX /usr) with dpkg-deb; prints its path.
    Deb(dist::DebArgs),
    /// Set up, build a static tracer, then boot Debian cloud kernels (6.1 and 6.12 unless
    /// KERNELs are given) under qemu and check a traced session in each.
    VmTest {
        /// `6.1`, `6.12` or an exact version such as `6.1.0-56` (the newest match in apt).
        kernels: Vec<String>,
        /// Seconds each boot may take (TCG: about 10 s on 2 cores).
        #[arg(long, default_value = "300")]
        timeout: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.task {
        Task::Setup => setup::run(),
        Task::SyscallNames => syscall_names::run(),
        Task::Build => setup::run().and_then(|()| build(true)),
        Task::Demo => setup::run().and_then(|()| build(true)).and_then(|()| demo::run()),
        Task::Bench(a) => setup::run().and_then(|()| build(true)).and_then(|()| bench::run(a)),
        Task::Test { args } => setup::run().and_then(|()| test(&args)),
        Task::Install(a) => dist::install(a),
        Task::Deb(a) => dist::deb(a),
        Task::VmTest { kernels, timeout } => {
            setup::run().and_then(|()| vmtest::run(&kernels, std::time::Duration::from_secs(timeout)))
        }
    };
    if let Err(e) = r {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn build(release: bool) -> anyhow::Result<()> {
    let mut args = vec!["build", "-p", "tracer", "-p", "tracer-tests"];
    if release {
        args.push("--release");
    }
    util::cargo(&args)
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(util::is_root(), "the tests load eBPF programs: run them as root");
    // Fail fast: formatting and lints before the (slow) build and tests.
    gates::run()?;
    build(false)?;
    let bin = util::workspace().join("target/debug/tracer");
    let extra: Vec<&str> = extra.iter().map(String::as_str).skip_while(|a| *a == "--").collect();
    let mut args: Vec<&str> = vec!["test", "--no-fail-fast"];
    // `--workspace` would override `-p`.
    if !extra.iter().any(|a| *a == "-p" || a.starts_with("--package")) {
        args.extend(["--workspace", "--exclude", "tracer-ebpf"]);
    }
    args.extend(&extra);
    let (r, passed, failed) = util::cargo_test(&args, &[("TRACER_BIN", bin.as_os_str())]);
    // Other kernels too, unless a test filter asked for less (or qemu is missing).
    let vm = if extra.is_empty() && vmtest::available() {
        vmtest::run(&[], std::time::Duration::from_secs(300))
    } else {
        eprintln!(
            "xtask: vm-test skipped ({})",
            if extra.is_empty() { "no qemu-system-x86_64" } else { "test filter given" }
        );
        Ok(())
    };
    let vm_failed = u64::from(vm.is_err());
    // One closing line for the whole suite (cargo's last line is an empty doc-test run).
    println!("tests: {passed} passed, {} failed", failed + vm_failed);
    r.and(vm)
}
