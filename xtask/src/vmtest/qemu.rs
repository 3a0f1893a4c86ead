//! One guest boot under qemu (TCG: no KVM in CI), its serial console captured to a file,
//! and the verdict read from it: qemu exits 0 whatever happened in the guest.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

pub(super) const RESULT: &str = "VMTEST RESULT: ";

pub(super) struct Boot {
    pub console: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

pub(super) fn boot(vmlinuz: &Path, initrd: &Path, log: &Path, timeout: Duration) -> anyhow::Result<Boot> {
    let console = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "1", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        // panic=-1: a panic reboots at once, and -no-reboot turns that into qemu exiting.
        // lsm=...,bpf: BPF LSM active, so `tracer protect --enforce` is proved in the guest.
        .args(["-append", "console=ttyS0 panic=-1 oops=panic lsm=lockdown,capability,landlock,yama,apparmor,bpf"])
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console)
        .spawn()
        .context("run qemu-system-x86_64 (cargo xtask setup installs qemu-system-x86)")?;
    let mut timed_out = false;
    while child.try_wait()?.is_none() {
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    let console = String::from_utf8_lossy(&std::fs::read(log)?).replace('\r', "");
    Ok(Boot { console, elapsed, timed_out })
}

impl Boot {
    /// `Ok(result line)` for a PASS, else why not.
    pub(super) fn verdict(&self) -> Result<String, String> {
        let line = self.console.lines().find_map(|l| l.find(RESULT).map(|i| l[i + RESULT.len()..].trim().to_string()));
        if let Some(l) = self.console.lines().find(|l| l.contains("Kernel panic")) {
            return Err(l.trim().to_string());
        }
        match line {
            Some(l) if l.starts_with("PASS") => Ok(l),
            Some(l) => Err(l),
            None if self.timed_out => {
                Err(format!("timed out after {:.0}s with no result line", self.elapsed.as_secs_f64()))
            }
            None => Err("the guest stopped without a result line".into()),
        }
    }

    pub(super) fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
