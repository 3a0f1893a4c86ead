//! Idempotent set-up: each step checks before it installs, so a second run is quick.

use std::process::Command;

use crate::util::{check, output};

/// Debian packages: the first three build bpf-linker against LLVM 22; the rest are the
/// real peers the tests and benchmarks drive.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    "util-linux",
    "iproute2",
    "rsyslog",
    "auditd",
    "openssh-server",
    "openssh-client",
    "sshpass",
    // tests/tests/guard_trust.rs: a client that sends chosen hostbased client host/user strings.
    "python3-asyncssh",
    "nftables",
    "iptables",
    "busybox-static",
    // tests/tests/ci.rs: the DNS server the CI job resolves its "registry" with (the -base
    // package: the binary without a system service started on the host).
    "dnsmasq-base",
    // tests/tests/report.rs builds a freestanding i386 program (gcc -m32 -nostdlib: no multilib).
    "gcc",
    "strace",
    // cargo xtask bench: the equivalent bpftrace one-liner beside strace and auditd.
    "bpftrace",
    "qemu-system-x86",
    // musl-gcc: the static (musl) tracer for vm-test compiles bundled SQLite.
    "musl-tools",
    // guard's ban mails (tests deliver to a local mailbox) and their whois part.
    "exim4-daemon-light",
    "whois",
    // fail2ban-regex: tracer-guard's parity test runs the real filter (its daemon is not started).
    "fail2ban",
    // systemd-analyze: tests/tests/dist.rs verifies the shipped units; dpkg-deb builds the package.
    "systemd",
    "dpkg-dev",
    // tests/tests/store.rs: a real PostgreSQL 15 cluster per test (initdb, pg_ctl, psql).
    "postgresql-15",
    "postgresql-client-15",
    // tests/tests/syslog_out.rs: rsyslog's own PostgreSQL output (ompgsql) for the rsyslog -> SQL path.
    "rsyslog-pgsql",
];

const BPF_LINKER_VERSION: &str = "0.13.0";

pub(crate) fn run() -> anyhow::Result<()> {
    apt()?;
    rust_src()?;
    musl_target()?;
    bpf_linker()
}

/// The static tracer the vm-test guests run.
fn musl_target() -> anyhow::Result<()> {
    if output("rustup", &["target", "list", "--installed"]).lines().any(|l| l == "x86_64-unknown-linux-musl") {
        return Ok(());
    }
    check(Command::new("rustup").args(["target", "add", "x86_64-unknown-linux-musl"]))
}

fn installed(pkg: &str) -> bool {
    output("dpkg-query", &["-W", "-f=${Status}", pkg]).contains("install ok installed")
}

fn apt() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    check(Command::new("apt-get").args(["update", "-qq"]))?;
    // Packages with daemons (auditd, sshd) must not start them on the host: the tests
    // start their own, configured for the test.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let had_policy = policy.exists();
    if !had_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let r = check(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
    if !had_policy {
        let _ = std::fs::remove_file(policy);
    }
    r
}

/// rust-src (build-std for the kernel programs) and the gates' clippy on nightly; clippy
/// and rustfmt on the active toolchain (the one `cargo` runs).
fn rust_src() -> anyhow::Result<()> {
    for (toolchain, components) in [(Some("nightly"), &["rust-src", "clippy"][..]), (None, &["clippy", "rustfmt"][..])]
    {
        let on: Vec<&str> = toolchain.map(|t| vec!["--toolchain", t]).unwrap_or_default();
        let have = output("rustup", &[&["component", "list", "--installed"][..], &on].concat());
        for c in components {
            if !have.lines().any(|l| l.starts_with(c)) {
                check(Command::new("rustup").args(["component", "add", c]).args(&on))?;
            }
        }
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if output("bpf-linker", &["--version"]).contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
    check(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
    )
}
