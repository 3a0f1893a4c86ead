//! The database sinks' sustained insert rate: real events recorded once (`tracer trace
//! --format json` of the workload's opens, execs and connects), then fed as fast as possible
//! through tracer-store's writer (the engine `trace --output sqlite:|postgresql://` and the
//! daemon use: batching thread, exactly-once inserts) into SQLite and into PostgreSQL; the
//! time runs until the writer has committed everything; the row count is checked after.
//! The feeder is tracer-store's `feed` example, built with --release.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{Bins, field_f64, median, pg::Cluster};

pub(super) struct InsertRow {
    pub target: &'static str,
    pub rows: u64,
    pub recorded: u64,
    /// Rows per batch (one transaction or COPY), as the feeder reported it.
    pub batch: u64,
    /// Events per second of each run.
    pub rates: Vec<f64>,
    /// Events per CPU second of the feeder process (writer thread included; PostgreSQL's
    /// server is not in it), each run.
    pub cpu_rates: Vec<f64>,
    /// Events per CPU second of the writer thread alone (binding and the database client).
    pub writer_rates: Vec<f64>,
    /// PostgreSQL: events per CPU second of the database cluster, each run.
    pub server_rates: Vec<f64>,
    /// Rows found in the database after each run minus rows fed (0: none lost).
    pub missing: i64,
    pub note: Option<String>,
}

impl InsertRow {
    pub(super) fn median(&self) -> f64 {
        median(&mut self.rates.clone())
    }
}

const TOTAL: u64 = 300_000;
const RUNS: usize = 5;

pub(super) fn run(bins: &Bins) -> anyhow::Result<Vec<InsertRow>> {
    let dir = std::env::temp_dir().join(format!("tracer-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let json = record(bins, &dir)?;
    crate::util::cargo(&["build", "--release", "-p", "tracer-store", "--example", "feed"])?;
    let feeder = crate::util::workspace().join("target/release/examples/feed");
    let recorded = std::fs::read_to_string(&json)?.lines().count() as u64;
    eprintln!("bench: {recorded} events recorded for the insert-rate rows");
    let mut out = Vec::new();
    let mut sqlite = InsertRow {
        target: "SQLite",
        rows: TOTAL,
        recorded,
        batch: 0,
        rates: vec![],
        cpu_rates: vec![],
        writer_rates: vec![],
        server_rates: vec![],
        missing: 0,
        note: None,
    };
    for i in 0..RUNS {
        let db = dir.join(format!("events-{i}.db"));
        let (secs, n, batch, cpu) = feed(&feeder, &json, &format!("sqlite:{}", db.display()), &dir)?;
        sqlite.batch = batch;
        sqlite.cpu_rates.push(TOTAL as f64 / cpu.0);
        sqlite.writer_rates.push(TOTAL as f64 / cpu.1);
        sqlite.missing += TOTAL as i64 - n;
        sqlite.rates.push(TOTAL as f64 / secs);
        eprintln!("bench: SQLite run {i}: {:.0} events/s, {n} rows", TOTAL as f64 / secs);
    }
    out.push(sqlite);
    let mut pg = InsertRow {
        target: "PostgreSQL 15",
        rows: TOTAL,
        recorded,
        batch: 0,
        rates: vec![],
        cpu_rates: vec![],
        writer_rates: vec![],
        server_rates: vec![],
        missing: 0,
        note: None,
    };
    match Cluster::start("insert") {
        Ok(c) => {
            // The rate of a server that has been running: a new cluster creates (and fills
            // with zeros) each 16 MiB WAL file as it first needs it, where a running one reuses
            // the files a checkpoint freed. One run not counted, then a checkpoint.
            feed(&feeder, &json, &c.url(), &dir)?;
            c.psql("events", "CHECKPOINT")?;
            for i in 0..RUNS {
                let before = c.cpu_secs();
                let (secs, n, batch, cpu) = feed(&feeder, &json, &c.url(), &dir)?;
                pg.server_rates.push(TOTAL as f64 / (c.cpu_secs() - before));
                pg.batch = batch;
                pg.cpu_rates.push(TOTAL as f64 / cpu.0);
                pg.writer_rates.push(TOTAL as f64 / cpu.1);
                pg.missing += TOTAL as i64 - n;
                pg.rates.push(TOTAL as f64 / secs);
                eprintln!("bench: PostgreSQL run {i}: {:.0} events/s, {n} rows", TOTAL as f64 / secs);
            }
        }
        Err(e) => pg.note = Some(format!("not measured: {e}")),
    }
    out.push(pg);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Seconds from the first row pushed to the writer's close (everything committed), and the
/// run's rows counted in the database.
fn feed(feeder: &Path, json: &Path, target: &str, dir: &Path) -> anyhow::Result<(f64, i64, u64, (f64, f64))> {
    let out = Command::new(feeder)
        .arg(json)
        .arg(target)
        .arg(TOTAL.to_string())
        .arg(dir.join("spool"))
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "the feeder failed: {text}");
    let stored = super::field(&text, "stored").unwrap_or(0);
    anyhow::ensure!(stored == u128::from(TOTAL), "the writer stored {stored} of {TOTAL}: {text}");
    let secs = field_f64(&text, "secs").ok_or_else(|| anyhow::anyhow!("no secs= in {text}"))?;
    let n = super::field(&text, "in_db").ok_or_else(|| anyhow::anyhow!("no in_db= in {text}"))?;
    let batch = super::field(&text, "batch").unwrap_or(0);
    let cpu = (field_f64(&text, "cpu").unwrap_or(f64::NAN), field_f64(&text, "writer_cpu").unwrap_or(f64::NAN));
    Ok((secs, i64::try_from(n)?, u64::try_from(batch)?, cpu))
}

/// Real events: the workload's opens, execs and connects, traced into a JSON file.
fn record(bins: &Bins, dir: &Path) -> anyhow::Result<PathBuf> {
    let file = dir.join("f");
    std::fs::write(&file, "x")?;
    let json = dir.join("events.json");
    let w = format!(
        "{} open-n:20000:{} exec-n:300:/bin/true connect-n:2000:127.0.0.1:9",
        bins.workload.display(),
        file.display()
    );
    let st = Command::new(&bins.tracer)
        .args(["trace", "--format", "json", "--output"])
        .arg(&json)
        .args(["--", "sh", "-c", &w])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "recording the events failed");
    Ok(json)
}
