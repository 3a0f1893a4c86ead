//! Fleet ban propagation: three guards in three network namespaces (each its own nftables)
//! sharing one PostgreSQL (`bansync`). Each ban is made on one guard in turn (three failures
//! in its log file); the latency is from that guard printing `Ban ADDR` (its nftables set
//! holds the address, then it publishes) to each other guard printing `fleet ban of ADDR`
//! (after its own nftables set holds it).

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use super::{
    Bins,
    netns::{Netns, Proc, Scratch},
    pg::Cluster,
    wall_ns,
};

pub(super) struct FleetLatency {
    pub samples_ms: Vec<f64>,
    pub bans: usize,
    pub note: Option<String>,
}

const BANS: usize = 30;

/// One guard; dropped in field order: the guard stops before its namespace goes.
struct Host {
    _guard: Proc,
    _ns: Netns,
    log: PathBuf,
}

pub(super) fn run(bins: &Bins) -> anyhow::Result<FleetLatency> {
    let db = Cluster::start("fleet")?;
    let dir = Scratch::new("fleet")?;
    let (tx, rx) = mpsc::channel::<(usize, u128, String)>();
    let mut hosts = Vec::new();
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        let ns = Netns::new(&format!("tracer-bench-fleet-{tag}"))?;
        let log = dir.file(&format!("auth-{tag}.log"));
        std::fs::write(&log, "")?;
        let jail = dir.file(&format!("jail-{tag}.local"));
        std::fs::write(
            &jail,
            format!(
                "[DEFAULT]\nbansync = {}\n\n[sshd]\nenabled = true\nignoreself = false\nmaxretry = 3\nbantime = 1h\nlogpath = {}\n",
                db.socket_url(),
                log.display()
            ),
        )?;
        let mut guard = Proc::spawn(
            ns.command(&bins.tracer)
                .args(["guard", "run", "--source", "file", "--config"])
                .arg(&jail)
                .arg("--state")
                .arg(dir.file(&format!("state-{tag}.sqlite3")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )?;
        for pipe in [
            Box::new(guard.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(guard.0.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((i, wall_ns(), line)).is_err() {
                        break;
                    }
                }
            });
        }
        hosts.push(Host { _guard: guard, _ns: ns, log });
    }
    std::thread::sleep(Duration::from_secs(3));
    while rx.try_recv().is_ok() {}
    let mut samples = Vec::new();
    let mut note = None;
    'bans: for k in 0..BANS {
        let ip = format!("198.51.100.{}", k + 1);
        let origin = k % hosts.len();
        let now = jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string();
        let mut f = std::fs::OpenOptions::new().append(true).open(&hosts[origin].log)?;
        for j in 0..3 {
            writeln!(f, "{now} host sshd[{}]: Failed password for root from {ip} port 5{j} ssh2", 4000 + j)?;
        }
        drop(f);
        let mut banned_at = None;
        let mut seen: Vec<(usize, u128)> = Vec::new();
        let end = Instant::now() + Duration::from_secs(5);
        while banned_at.is_none() || seen.len() < hosts.len() - 1 {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                note = Some(format!("ban {} of {BANS} ({ip}) not seen on every guard within 5 s", k + 1));
                break 'bans;
            };
            let Ok((h, t, line)) = rx.recv_timeout(left) else { continue };
            if h == origin && banned_at.is_none() && line.contains(&format!("Ban {ip}")) && !line.contains("Restore") {
                banned_at = Some(t);
            } else if h != origin && line.contains(&format!("fleet ban of {ip} ")) && !seen.iter().any(|s| s.0 == h) {
                seen.push((h, t));
            }
        }
        let a = banned_at.unwrap_or_default();
        samples.extend(seen.iter().map(|&(_, t)| t.saturating_sub(a) as f64 / 1e6));
    }
    // The guards stop, their namespaces go, then the scratch directory (also on errors).
    drop(hosts);
    Ok(FleetLatency { samples_ms: samples, bans: BANS, note })
}
