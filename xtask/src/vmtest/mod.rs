//! `cargo xtask vm-test [KERNEL...]`: the same static tracer, proven on other kernels.
//! Each kernel (Debian's cloud builds; 6.1 and 6.12 by default) boots under qemu with an
//! initramfs holding the tracer, the workload and a test init (`tests/src/bin/vm-init.rs`),
//! which traces a session, checks the events and prints a `VMTEST RESULT:` line.

mod initramfs;
mod kernel;
mod qemu;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};

use crate::util::{cargo, output, workspace};

pub(crate) const DEFAULT_KERNELS: &[&str] = &["6.1", "6.12"];
const MUSL: &str = "x86_64-unknown-linux-musl";

/// qemu is there (setup installs it): `cargo xtask test` runs the VM tests only then.
pub(crate) fn available() -> bool {
    !output("qemu-system-x86_64", &["--version"]).is_empty()
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

pub(crate) fn run(kernels: &[String], timeout: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(available(), "qemu-system-x86_64 not found (cargo xtask setup installs qemu-system-x86)");
    let kernels: Vec<String> =
        if kernels.is_empty() { DEFAULT_KERNELS.iter().map(|k| k.to_string()).collect() } else { kernels.to_vec() };
    // Static (musl) binaries: the guest has no libc, only what the initramfs holds.
    cargo(&[
        "build",
        "--release",
        "--target",
        MUSL,
        "-p",
        "tracer",
        "-p",
        "tracer-tests",
        "--bin",
        "tracer",
        "--bin",
        "workload",
        "--bin",
        "vm-init",
    ])?;
    let bins = target_dir().join(MUSL).join("release");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("busybox not found (cargo xtask setup installs busybox-static)")?;
    let out = target_dir().join("vm-test");
    std::fs::create_dir_all(&out)?;
    let initrd = out.join("initrd.gz");
    initramfs::write(&initrd, &bins.join("vm-init"), &bins.join("tracer"), &bins.join("workload"), &busybox)?;

    // Downloaded kernels outlive `cargo clean` (.vm-cache is ignored by git).
    let cache = workspace().join(".vm-cache");
    std::fs::create_dir_all(&cache)?;
    let mut failed = Vec::new();
    for spec in &kernels {
        let k = kernel::fetch(&cache, spec)?;
        let log = out.join(format!("console-{}.log", k.release));
        eprintln!("xtask: vm-test: booting {} (TCG, timeout {}s)", k.release, timeout.as_secs());
        let boot = qemu::boot(&k.vmlinuz, &initrd, &log, timeout)?;
        match boot.verdict() {
            Ok(line) => eprintln!("xtask: vm-test: {} {line} in {:.1}s", k.release, boot.elapsed.as_secs_f64()),
            Err(why) => {
                eprintln!(
                    "xtask: vm-test: {} FAILED in {:.1}s: {why}\n--- last console lines ({}) ---\n{}\n---",
                    k.release,
                    boot.elapsed.as_secs_f64(),
                    log.display(),
                    boot.tail(60)
                );
                failed.push(k.release);
            }
        }
    }
    if !failed.is_empty() {
        bail!("vm-test failed on {}", failed.join(", "));
    }
    Ok(())
}
