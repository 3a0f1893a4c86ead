//! Project tasks: `cargo xtask setup|build|demo|test`. Every task that needs the eBPF
//! toolchain runs `setup` first, so a fresh machine needs nothing but these commands.

mod bench;
mod demo;
mod setup;
mod util;

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
    /// Set up, build, then run every test (as root: the tests load the real programs).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.task {
        Task::Setup => setup::run(),
        Task::Build => setup::run().and_then(|()| build(true)),
        Task::Demo => setup::run().and_then(|()| build(true)).and_then(|()| demo::run()),
        Task::Bench(a) => setup::run().and_then(|()| build(true)).and_then(|()| bench::run(a)),
        Task::Test { args } => setup::run().and_then(|()| test(&args)),
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
    build(false)?;
    let bin = util::workspace().join("target/debug/tracer");
    let mut args: Vec<&str> = vec!["test", "--workspace", "--no-fail-fast"];
    args.extend(extra.iter().map(String::as_str));
    util::cargo_env(&args, &[("TRACER_BIN", bin.as_os_str())])
}
