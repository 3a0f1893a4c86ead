//! `--spool-full block` end to end: PostgreSQL stopped, a spool far too small for what the
//! traced workload makes. The sink waits (the reader stops reading; the kernel ring holds
//! events and counts any it cannot), the closing line says how long; when the database
//! returns every event lands exactly once. A stop signal while waiting releases the sink:
//! the rest goes to the spool over its limit and the next run replays it.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tracer_tests::{pg::Postgres, *};

const N: u32 = 400;

fn loop_of(n: u32, mark: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do /bin/true {mark}; i=$((i+1)); done")
}

/// The tracer, blocking on a 16 KiB spool, tracing: wait for GO, N execs with MARK, touch DONE.
fn spawn(pg: &Postgres, dir: &TempDir, mark: &str) -> (Child, Arc<Mutex<String>>) {
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.05; done; {l}; touch {done}",
        go = dir.file("go").display(),
        l = loop_of(N, mark),
        done = dir.file("done").display()
    );
    let mut child = Command::new(tracer_bin())
        .args(["trace", "--output", &pg.url(), "--spool"])
        .arg(dir.file("spool"))
        .args(["--spool-size", "16K", "--spool-full", "block", "--", "/bin/sh", "-c", &script])
        .env("PGPASSWORD", pg::PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn({
        let err = err.clone();
        move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut e = err.lock().unwrap();
                e.push_str(&l);
                e.push('\n');
            }
        }
    });
    (child, err)
}

fn wait_until(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spool_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum()
}

/// `tracer: N events, L lost, ...` and `tracer: store: S stored, P spooled, D dropped`.
fn closing(e: &str) -> (u64, u64, u64, u64, u64) {
    let n = |line_prefix: &str, suffix: &str| -> u64 {
        let l = e
            .lines()
            .find(|l| l.starts_with(line_prefix) && l[line_prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no {line_prefix:?} line: {e}"));
        let i = l.find(suffix).unwrap_or_else(|| panic!("{suffix} in {l}"));
        l[..i].rsplit([' ', ',']).find(|w| !w.is_empty()).unwrap().parse().unwrap()
    };
    (
        n("tracer: ", " events"),
        n("tracer: ", " lost"),
        n("tracer: store: ", " stored"),
        n("tracer: store: ", " spooled"),
        n("tracer: store: ", " dropped"),
    )
}

#[test]
fn a_full_spool_blocks_the_sink_until_the_database_returns_and_loses_nothing() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgblock");
    let (mut child, err) = spawn(&pg, &dir, "blocked");
    // Attached and connected: the schema is there.
    wait_until("the tracer to connect", 60, || {
        pg.psql("events", "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'tracer_schema'") == "1"
    });
    std::thread::sleep(Duration::from_millis(500));
    pg.stop();
    std::fs::write(dir.file("go"), "").unwrap();
    wait_until("the spool-full warning", 60, || err.lock().unwrap().contains("full"));
    // The workload ends; the tracer does not: it waits for the database with the rest.
    wait_until("the workload", 120, || dir.file("done").exists());
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "the tracer waits: {}", err.lock().unwrap());
    let bytes = spool_bytes(&dir.file("spool"));
    assert!(bytes <= 16 << 10, "the spool keeps to its size while blocking: {bytes}");
    let waited_from = Instant::now();
    pg.start_again();
    let st = wait_exit(&mut child, 120);
    let e = err.lock().unwrap().clone();
    assert!(st.success(), "{e}");
    let (events, lost, stored, spooled, dropped) = closing(&e);
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!((spooled, dropped), (0, 0), "{e}");
    assert_eq!(stored, events, "every event the tracer took is stored: {e}");
    assert_eq!(count("SELECT COUNT(*) FROM events"), events, "{e}");
    assert_eq!(count("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events"), events, "exactly once");
    // Nothing silent: each exec is stored, or the kernel counted it lost (and said so).
    let marks = count("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"blocked\"]'");
    if lost == 0 {
        assert_eq!(marks, u64::from(N), "{e}");
    } else {
        assert!(e.contains("events lost so far") && marks + lost >= u64::from(N), "{e}");
    }
    assert!(e.contains("waiting for the database") && e.contains("the sink goes on after waiting"), "{e}");
    assert!(e.contains("s on the full spool for the database"), "the closing line says it waited: {e}");
    assert_eq!(spool_bytes(&dir.file("spool")), 0, "the spool was replayed");
    println!(
        "block: {events} events, {lost} lost, all stored once; stored {:.1} s after the database returned",
        waited_from.elapsed().as_secs_f64()
    );
}

#[test]
fn a_stop_signal_releases_a_blocked_sink_and_the_next_run_replays_the_rest() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgblockstop");
    let (mut child, err) = spawn(&pg, &dir, "stopped");
    wait_until("the tracer to connect", 60, || {
        pg.psql("events", "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'tracer_schema'") == "1"
    });
    std::thread::sleep(Duration::from_millis(500));
    pg.stop();
    std::fs::write(dir.file("go"), "").unwrap();
    wait_until("the workload", 120, || dir.file("done").exists());
    wait_until("the spool-full warning", 60, || err.lock().unwrap().contains("full"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "blocked: {}", err.lock().unwrap());
    // SAFETY: kill takes plain integers; the tracer is our child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_exit(&mut child, 30);
    let e = err.lock().unwrap().clone();
    assert!(st.success(), "{e}");
    let (events, lost, stored, spooled, dropped) = closing(&e);
    assert!(spooled > 0 && dropped == 0, "the rest waits in the spool: {e}");
    assert!(e.contains("waits in"), "{e}");
    assert!(spool_bytes(&dir.file("spool")) > 16 << 10, "let over its limit at exit, nothing lost");
    pg.start_again();
    let o = Command::new(tracer_bin())
        .args(["trace", "--output", &pg.url(), "--spool"])
        .arg(dir.file("spool"))
        .args(["--", "/bin/true"])
        .env("PGPASSWORD", pg::PASSWORD)
        .output()
        .unwrap();
    let e2 = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{e2}");
    let (events2, _, stored2, _, _) = closing(&e2);
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(stored + stored2, events + events2, "{e}\n{e2}");
    assert_eq!(count("SELECT COUNT(*) FROM events"), events + events2);
    assert_eq!(count("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events"), events + events2);
    let marks = count("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"stopped\"]'");
    assert!(marks + lost >= u64::from(N), "{marks} + {lost} lost: {e}");
    assert_eq!(spool_bytes(&dir.file("spool")), 0);
}
