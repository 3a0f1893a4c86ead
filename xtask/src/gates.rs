//! The gates `cargo xtask test` passes before any test runs: formatting, no import cycle
//! between the modules of a crate, then clippy with warnings as errors on the user-space
//! crates, then clippy on the kernel programs with the toolchain and target they are built
//! with (see tracer/build.rs and aya-build). The first failure stops the run with the
//! command to reproduce it.

use std::process::Command;

use anyhow::bail;

use crate::util::workspace;

/// rustflags aya-build passes when it builds the kernel programs (without the link-time
/// ones, which a check does not use).
const EBPF_RUSTFLAGS: &str = "--cfg=bpf_target_arch=\"x86_64\"";

/// Every crate of the workspace, by directory.
const CRATES: &[&str] = &["tracer-ebpf", "tracer-common", "tracer", "tracer-guard", "tracer-rules", "tests", "xtask"];

pub(crate) fn run() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = workspace();
    gate("cargo fmt --all --check", "formatting differs: run `cargo fmt --all`", || {
        Command::new(&cargo).args(["fmt", "--all", "--check"]).current_dir(&root).status()
    })?;
    eprintln!("xtask: gate: no import cycle between modules (use crate::/super:: lines)");
    for krate in CRATES {
        let cycles = crate::cycles::find(&root.join(krate).join("src"))?;
        if !cycles.is_empty() {
            bail!("gate failed: import cycles in {krate}: {}; no test was run", cycles.join("; "));
        }
    }
    gate(
        "cargo clippy --workspace --exclude tracer-ebpf --all-targets -- -D warnings",
        "clippy found warnings in the user-space crates",
        || {
            Command::new(&cargo)
                .args(["clippy", "--workspace", "--exclude", "tracer-ebpf", "--all-targets", "--", "-D", "warnings"])
                .current_dir(&root)
                .status()
        },
    )?;
    let ebpf_dir = root.join("tracer-ebpf");
    let ebpf_target = crate::vmtest::target_dir().join("ebpf-clippy");
    gate(
        "(cd tracer-ebpf && CARGO_ENCODED_RUSTFLAGS='--cfg=bpf_target_arch=\"x86_64\"' rustup run nightly cargo clippy \
         -p tracer-ebpf --bins --lib --release --target bpfel-unknown-none -Z build-std=core \
         --target-dir ../target/ebpf-clippy -- -D warnings)",
        "clippy found warnings in the kernel programs",
        || {
            Command::new("rustup")
                .args(["run", "nightly", "cargo", "clippy", "--package", "tracer-ebpf", "--bins", "--lib", "--release"])
                .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--target-dir"])
                .arg(&ebpf_target)
                .args(["--", "-D", "warnings"])
                .current_dir(&ebpf_dir)
                // The outer cargo's compiler settings are the stable host ones.
                .env_remove("RUSTC")
                .env_remove("RUSTC_WORKSPACE_WRAPPER")
                .env_remove("RUSTFLAGS")
                .env("CARGO_ENCODED_RUSTFLAGS", EBPF_RUSTFLAGS)
                .status()
        },
    )
}

fn gate(what: &str, why: &str, run: impl FnOnce() -> std::io::Result<std::process::ExitStatus>) -> anyhow::Result<()> {
    eprintln!("xtask: gate: {what}");
    match run() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("gate failed ({s}): {why}; no test was run. Reproduce with: {what}"),
        Err(e) => bail!("gate could not run ({e}): {what}"),
    }
}
