//! The insert-rate bench's feeder (`cargo xtask bench` builds it with --release and runs
//! it): reads a JSON-lines file written by `tracer trace --format json`, turns each event
//! into a row, and pushes TOTAL rows (the recording repeated, times made unique) through the
//! writer as fast as it takes them, then closes it (everything committed).
//!
//! Usage: feed EVENTS.json sqlite:PATH|postgresql://... TOTAL SPOOL_DIR
//! Prints `feed: rows=N secs=S stored=N spooled=N`.
// An example gets the library's whole dependency list; it uses part of it.
#![allow(unused_crate_dependencies)]

use std::time::Instant;

use serde_json::Value;
use tracer_store::{
    Row, Target,
    spool::OnFull,
    writer::{Options, Writer},
};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: feed EVENTS.json TARGET TOTAL SPOOL_DIR");
        std::process::exit(2);
    }
    let text = std::fs::read_to_string(&a[1]).expect("the events file");
    let rows: Vec<Row> =
        text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|v| row(&v)).collect();
    assert!(!rows.is_empty(), "no events in {}", a[1]);
    let target = Target::parse(&a[2]).expect("sqlite:PATH or postgresql://").expect("a usable target");
    let check = target.clone();
    let total: usize = a[3].parse().expect("TOTAL");
    let opts = Options {
        target,
        retention_days: 0,
        spool_dir: a[4].clone().into(),
        spool_bytes: 1 << 30,
        on_full: OnFull::Block,
        key: None,
    };
    let mut w = Writer::start(opts).unwrap_or_else(|e| panic!("{e}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let base = i64::try_from(now).unwrap() - total as i64;
    let t = Instant::now();
    for i in 0..total {
        // Cloned here, in the timed loop: the sink builds a row per event the same way.
        let mut r = rows[i % rows.len()].clone();
        r.time_ns = base + i as i64;
        w.push(r).unwrap_or_else(|e| panic!("{e}"));
    }
    let sum = w.close().unwrap_or_else(|e| panic!("{e}"));
    let secs = t.elapsed().as_secs_f64();
    // Counted in the database: this run's rows (their times start at BASE).
    let in_db: i64 = match &check {
        Target::Sqlite(p) => tracer_store::sqlite::Sqlite::open_read(p)
            .and_then(|db| {
                Ok(db.conn().query_row("SELECT COUNT(*) FROM events WHERE time_ns >= ?1", [base], |r| r.get(0))?)
            })
            .unwrap_or_else(|e| panic!("{e}")),
        Target::Postgres(u) => {
            let mut db = tracer_store::pg::Pg::connect_read(u).unwrap_or_else(|e| panic!("{e}"));
            db.client().query_one("SELECT COUNT(*) FROM events WHERE time_ns >= $1", &[&base]).expect("count").get(0)
        }
    };
    let cpu = cpu_secs("/proc/self/stat");
    // The writer thread has ended: its time is the process's minus this (main) thread's.
    let writer_cpu = cpu - cpu_secs("/proc/thread-self/stat");
    println!(
        "feed: rows={total} batch={} cpu={cpu:.3} writer_cpu={writer_cpu:.3} recorded={} secs={secs:.3} stored={} spooled={} in_db={in_db}",
        tracer_store::writer::BATCH,
        rows.len(),
        sum.stored,
        sum.spooled
    );
}

/// User + system CPU seconds so far of the process or thread whose stat file is STAT.
fn cpu_secs(stat: &str) -> f64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime, in 1/100 s) are the 12th and 13th after the name.
    let tick = |i: usize| f.get(i).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// A JSON-format event as the store's row (the fields have the same names).
fn row(v: &Value) -> Option<Row> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let i = |k: &str| v.get(k).and_then(Value::as_i64);
    let b = |k: &str| v.get(k).and_then(Value::as_bool);
    let id = |k: &str| match v.get(k) {
        Some(Value::String(x)) if x == "unset" => Some(4_294_967_295),
        Some(n) => n.as_i64(),
        None => None,
    };
    let time: jiff::Timestamp = s("time")?.parse().ok()?;
    Some(Row {
        event: s("event")?,
        time_ns: i64::try_from(time.as_nanosecond()).ok()?,
        pid: i("pid")?,
        tid: i("tid")?,
        ppid: i("ppid"),
        uid: i("uid")?,
        gid: i("gid")?,
        euid: i("euid")?,
        egid: i("egid")?,
        auid: id("auid"),
        ses: id("ses"),
        comm: s("comm")?,
        exe: s("exe"),
        mntns: i("mntns"),
        chrooted: b("chrooted"),
        root: s("root")?,
        syscall: i("syscall")?,
        ret: i("ret")?,
        error: s("error"),
        filename: s("filename"),
        cwd: s("cwd"),
        argv: v.get("argv").map(Value::to_string),
        argv_truncated: b("argv_truncated"),
        argc: i("argc"),
        path: s("path"),
        host_path: s("host_path"),
        name: s("name"),
        flags: i("flags"),
        flags_names: s("flags_names"),
        mode: i("mode"),
        base_unknown: b("base_unknown"),
        via: s("via"),
        data: s("data"),
        data_truncated: b("data_truncated"),
        family: s("family"),
        fd: i("fd"),
        address: s("address"),
        port: i("port"),
        ..Row::default()
    })
}
