//! `cargo xtask bench`: the tracer against no tracing, auditd and strace on one workload,
//! configurations interleaved (A B C ... A B C ...) so drift hits all alike; medians and
//! ratios come from the same run. Writes BENCHMARKS.md and prints the table.

mod fleet;
mod guard;
mod netns;
mod overhead;
mod pg;
mod rate;
mod report;
mod store;

use std::{path::PathBuf, process::Command};

use clap::Args;

use crate::util::workspace;

#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// open+close of one file, per workload run.
    #[arg(long, default_value_t = 20000)]
    pub opens: u64,
    /// fork+exec of /bin/true, per workload run.
    #[arg(long, default_value_t = 200)]
    pub execs: u64,
    /// failed TCP connects to 127.0.0.1:9, per workload run.
    #[arg(long, default_value_t = 2000)]
    pub connects: u64,
    /// Runs of each configuration.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Runs of the untraced workload and the tracer's own configurations (each under a
    /// second): more rounds than the slow tools get, for steadier medians.
    #[arg(long, default_value_t = 15)]
    pub tracer_repeats: usize,
    /// Skip auditd and strace (quick runs while profiling).
    #[arg(long)]
    pub tracer_only: bool,
    /// Only the database rows (insert rates, fleet ban propagation): their section of
    /// BENCHMARKS.md is replaced, the rest kept.
    #[arg(long)]
    pub store_only: bool,
    /// Only the guard's ban latency (real sshd, real attacker), printed; BENCHMARKS.md is
    /// left as it is.
    #[arg(long, conflicts_with = "store_only")]
    pub guard_only: bool,
}

pub(crate) struct Bins {
    pub tracer: PathBuf,
    pub workload: PathBuf,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(crate::util::is_root(), "the benchmark loads eBPF programs and drives auditd: run it as root");
    let ws = workspace();
    let bins = Bins { tracer: ws.join("target/release/tracer"), workload: ws.join("target/release/workload") };
    if args.guard_only {
        let g = guard::run(&bins)?;
        for (i, ms) in g.samples_ms.iter().enumerate() {
            println!("ban {}: {ms:.2} ms", i + 1);
        }
        print!("{}", report::guard_section(&g));
        anyhow::ensure!(g.samples_ms.len() == guard::SAMPLES, "the guard's ban latency was not measured in full");
        return Ok(());
    }
    if args.store_only {
        let section = report::store_section(&store::run(&bins)?, &fleet::run(&bins)?);
        let path = ws.join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, report::splice(&old, &section))?;
        println!("{section}");
        return Ok(());
    }
    let overhead = overhead::run(&args, &bins)?;
    let rate = rate::run(&bins)?;
    let guard = guard::run(&bins)?;
    let stores = store::run(&bins)?;
    let fleet = fleet::run(&bins)?;
    let md = report::markdown(&args, &overhead, &rate, &guard);
    let md = report::splice(&md, &report::store_section(&stores, &fleet));
    std::fs::write(ws.join("BENCHMARKS.md"), &md)?;
    println!("{md}");
    Ok(())
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

pub(crate) fn wall_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// `key=VALUE` from the workload's summary line.
pub(crate) fn field(text: &str, key: &str) -> Option<u128> {
    text.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// `key=VALUE` (a decimal number) from a summary line.
pub(crate) fn field_f64(text: &str, key: &str) -> Option<f64> {
    text.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The lost count and event count from the tracer's closing line.
pub(crate) fn summary(stderr: &str) -> (Option<u64>, Option<u64>) {
    let Some(line) = stderr.lines().rev().find(|l| l.starts_with("tracer: ") && l.contains(" lost")) else {
        return (None, None);
    };
    let n = |suffix: &str| {
        line.trim_start_matches("tracer: ").split(", ").find_map(|p| p.strip_suffix(suffix)?.parse().ok())
    };
    (n(" events"), n(" lost"))
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = crate::util::output("uname", &["-r"]).trim().to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("?".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!("{cores} cores ({cpu}), {mem}, kernel {kernel}")
}

pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
