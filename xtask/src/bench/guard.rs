//! Ban latency: from a process named sshd writing a failure line to the guard printing
//! `Ban ADDR`, which it does only after the nftables set holds the address.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use super::{Bins, field, wall_ns};

pub(super) struct GuardLatency {
    pub samples_ms: Vec<f64>,
    pub note: Option<String>,
}

const NETNS: &str = "tracer-bench-guard";

pub(super) fn run(bins: &Bins) -> anyhow::Result<GuardLatency> {
    let help = Command::new(&bins.tracer).args(["guard", "--help"]).output()?;
    if !help.status.success() {
        return Ok(GuardLatency {
            samples_ms: vec![],
            note: Some("`tracer guard` is not available in this build".into()),
        });
    }
    let dir = std::env::temp_dir().join(format!("tracer-guard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // A process whose comm is "sshd": the workload binary under that name.
    let fake_sshd = dir.join("sshd");
    std::fs::copy(&bins.workload, &fake_sshd)?;
    let jail = dir.join("jail.local");
    std::fs::write(
        &jail,
        "[sshd]\nenabled = true\nmaxretry = 1\nfindtime = 10m\nbantime = 10m\nbanaction = nftables\n",
    )?;
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    crate::util::check(Command::new("ip").args(["netns", "add", NETNS]))?;
    let mut guard = Command::new("ip")
        .args(["netns", "exec", NETNS])
        .arg(&bins.tracer)
        .args(["guard", "run", "--config"])
        .arg(&jail)
        .arg("--state")
        .arg(dir.join("state.sqlite3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let (tx, rx) = mpsc::channel::<(u128, String)>();
    let stdout = guard.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((wall_ns(), line)).is_err() {
                break;
            }
        }
    });
    // Attached when a first line from a fake sshd is seen; give it a moment to load.
    std::thread::sleep(Duration::from_millis(1500));
    let mut samples = Vec::new();
    let mut note = None;
    for i in 1..=20 {
        let addr = format!("192.0.2.{i}");
        let out = Command::new(&fake_sshd)
            .arg(format!("stderr:Failed password for invalid user bench from {addr} port 4242 ssh2"))
            .stderr(Stdio::null())
            .output()?;
        let written = String::from_utf8_lossy(&out.stdout).lines().find_map(|l| field(l, "write_ns"));
        let want = format!("Ban {addr}");
        let seen = loop {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok((t, line)) if line.contains(&want) && !line.contains("Restore") => break Some(t),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        match (written, seen) {
            (Some(w), Some(s)) => samples.push(s.saturating_sub(w) as f64 / 1e6),
            _ => {
                note = Some(format!("no `Ban {addr}` within 5 s"));
                break;
            }
        }
    }
    // SAFETY: kill takes plain integers; the child is ours and not yet reaped.
    unsafe { libc::kill(guard.id() as i32, libc::SIGTERM) };
    let _ = guard.wait();
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(GuardLatency { samples_ms: samples, note })
}
