//! The highest event rate the tracer sustains with nothing lost, and what happens past it:
//! several workload processes opening a file as fast as they can, the tracer writing JSON.

use std::process::{Command, Stdio};

use super::{Bins, field, summary};

pub(super) struct RateRow {
    pub procs: usize,
    pub buffer_mib: u32,
    /// The reader was stalled (its output a pipe nobody read for 2 s).
    pub stalled: bool,
    pub events: u64,
    pub lost: u64,
    pub secs: f64,
    /// Opens per second of the same workloads without the tracer: the machine's ceiling.
    pub untraced: f64,
}

impl RateRow {
    pub(super) fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// The row with the highest rate among those that lost nothing.
pub(super) fn best(rows: &[RateRow]) -> Option<&RateRow> {
    rows.iter().filter(|r| r.lost == 0).max_by(|a, b| a.rate().total_cmp(&b.rate()))
}

const OPENS: u64 = 100_000;

pub(super) fn run(bins: &Bins) -> anyhow::Result<Vec<RateRow>> {
    let dir = std::env::temp_dir().join(format!("tracer-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("f");
    std::fs::write(&file, "x")?;
    let mut rows = Vec::new();
    let mut untraced = std::collections::HashMap::new();
    for (procs, buffer_mib, stalled) in [(1, 8, false), (2, 8, false), (4, 8, false), (4, 1, false), (4, 1, true)] {
        eprintln!(
            "bench: rate with {procs} workload(s), {buffer_mib} MiB ring buffer{}",
            if stalled { ", reader stalled" } else { "" }
        );
        let w = format!("{} open-n:{OPENS}:{}", bins.workload.display(), file.display());
        let script = format!("{} wait", (0..procs).map(|_| format!("{w} & ")).collect::<String>());
        if let std::collections::hash_map::Entry::Vacant(e) = untraced.entry(procs) {
            // The ceiling: the fastest of three runs.
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let out = Command::new("sh").args(["-c", &script]).stderr(Stdio::piped()).output()?;
                best = best.min(elapsed(&String::from_utf8_lossy(&out.stderr)));
            }
            e.insert((procs as u64 * OPENS) as f64 / best);
        }
        let output = if stalled { "/dev/stdout" } else { "/dev/null" };
        let mut child = Command::new(&bins.tracer)
            .args([
                "trace",
                "--format",
                "json",
                "--output",
                output,
                "--buffer-size",
                &buffer_mib.to_string(),
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdout(if stalled { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .spawn()?;
        let reader = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(2));
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            })
        });
        let out = child.wait_with_output()?;
        if let Some(r) = reader {
            let _ = r.join();
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (events, lost) = summary(&stderr);
        let secs = elapsed(&stderr);
        rows.push(RateRow {
            procs,
            buffer_mib,
            stalled,
            events: events.unwrap_or(0),
            lost: lost.unwrap_or(0),
            secs,
            untraced: untraced[&procs],
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

/// The slowest workload's own elapsed time, in seconds.
fn elapsed(stderr: &str) -> f64 {
    stderr.lines().filter(|l| l.starts_with("workload: ")).filter_map(|l| field(l, "elapsed_ns")).max().unwrap_or(0)
        as f64
        / 1e9
}
