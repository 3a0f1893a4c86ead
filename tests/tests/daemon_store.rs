//! `tracer daemon` writing to databases beside its log (`output =` in tracer.conf): the real
//! daemon on the running kernel, a real SQLite file and a real PostgreSQL 15 that the test
//! stops and starts again. Every event lands once in each; `tracer status` shows each
//! output's counts, and a SIGHUP that keeps the outputs keeps their counts. The daemon is a
//! machine-wide singleton (its lock is /run/tracer/daemon.lock): one test runs it.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::{pg::Postgres, *};

const W: &str = env!("CARGO_BIN_EXE_workload");

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid as i32, sig) };
}

fn status_json() -> Option<serde_json::Value> {
    let out = Command::new(tracer_bin()).args(["status", "--format", "json"]).output().unwrap();
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn wait_status(pid: u32, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let v = status_json();
        if let Some(v) = &v
            && v["pid"] == pid
            && cond(v)
        {
            return v.clone();
        }
        assert!(Instant::now() < end, "status never showed {what}: {v:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn opens(marker: &Path, n: u32) {
    let st = Command::new(W).arg(format!("open-n:{n}:{}", marker.display())).status().unwrap();
    assert!(st.success());
}

fn config(dir: &TempDir, pg: &Postgres, num_logs: u32) -> String {
    format!(
        "log_file = {log}\nlog_format = json\nnum_logs = {num_logs}\noutput = sqlite:{db}\noutput = {url}\n\
         spool_dir = {spool}\nspool_size = 64\nspool_full_action = block\n",
        log = dir.file("log/tracer.log").display(),
        db = dir.file("events.db").display(),
        url = pg.url(),
        spool = dir.file("spool").display(),
    )
}

/// One daemon at a time on a machine (the pid lock): the tests that start one take turns.
static ONE_DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stored(v: &serde_json::Value, i: usize) -> u64 {
    v["outputs"][i]["stored"].as_u64().unwrap()
}

#[test]
fn daemon_writes_every_event_to_sqlite_and_postgresql_through_an_outage_and_a_reload() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let pg = Postgres::start();
    let dir = TempDir::new("daemon-store");
    let (conf, marker) = (dir.file("tracer.conf"), dir.file("marker"));
    std::fs::write(&marker, "x").unwrap();
    std::fs::write(&conf, config(&dir, &pg, 5)).unwrap();

    // A database that cannot be used stops the daemon at start: one line, exit 2.
    let bad = dir.file("bad.conf");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &bad,
        format!("log_file = {}\noutput = postgresql://tracer@127.0.0.1:{closed}/events\n", dir.file("b.log").display()),
    )
    .unwrap();
    let o = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&bad).env("PGPASSWORD", pg::PASSWORD).output();
    let o = o.unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("Connection refused") && e.lines().count() == 1 && !e.contains(pg::PASSWORD), "{e}");
    std::fs::write(&bad, "output = /var/log/x.json\n").unwrap();
    let o = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&bad).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(&format!("{}:1: output: ", bad.display())), "{e}");

    let mut daemon = Command::new(tracer_bin())
        .args(["daemon", "--config"])
        .arg(&conf)
        .env("PGPASSWORD", pg::PASSWORD)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let v = wait_status(pid, "two outputs", |v| v["outputs"].as_array().is_some_and(|a| a.len() == 2));
    assert_eq!(v["outputs"][0]["target"], format!("sqlite:{}", dir.file("events.db").display()));
    assert_eq!(v["outputs"][1]["target"], pg.url());

    opens(&marker, 1000);
    let v = wait_status(pid, "the first events stored", |v| stored(v, 0) > 1000 && stored(v, 1) > 1000);
    // A reload that keeps the outputs keeps their writers and counts.
    std::fs::write(&conf, config(&dir, &pg, 4)).unwrap();
    kill(pid, libc::SIGHUP);
    let r = wait_status(pid, "the reload", |v| v["reloads"] == 1);
    assert!(stored(&r, 0) >= stored(&v, 0) && stored(&r, 1) >= stored(&v, 1), "counts kept: {v} {r}");
    // A new output that cannot be used refuses the reload: the old outputs go on.
    let unusable = format!("output = postgresql://tracer@127.0.0.1:{closed}/events\n");
    std::fs::write(&conf, config(&dir, &pg, 4) + &unusable).unwrap();
    kill(pid, libc::SIGHUP);
    let r = wait_status(pid, "the refused reload", |v| v["reloads_refused"] == 1);
    assert_eq!(r["outputs"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["reloads"], 1);

    // PostgreSQL away: its events wait in the spool (status says so), SQLite goes on.
    pg.stop();
    opens(&marker, 1000);
    let down = wait_status(pid, "events spooled", |v| v["outputs"][1]["spooled"].as_u64().unwrap() > 0);
    pg.start_again();
    opens(&marker, 1000);
    wait_status(pid, "the spool replayed", |v| v["outputs"][1]["spooled"] == 0 && stored(v, 1) > stored(&down, 1));
    let text = Command::new(tracer_bin()).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("\noutput {} stored ", pg.url())), "{text}");

    kill(pid, libc::SIGTERM);
    let st = wait_exit(&mut daemon, 30);
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(err.contains(" 0 lost"), "{err}");
    assert!(err.contains(&format!("output {}: store: ", pg.url())) && err.contains(", 0 spooled, 0 dropped"), "{err}");

    // Each database holds every marker open once, as the log does.
    let m = marker.display().to_string();
    let conn = rusqlite::Connection::open(dir.file("events.db")).unwrap();
    let sq = |sql: &str| -> i64 { conn.query_row(sql, [&m], |r| r.get(0)).unwrap() };
    assert_eq!(sq("SELECT COUNT(*) FROM events WHERE event = 'open' AND path = ?1"), 3000);
    let pgc = |sql: &str| -> u64 { pg.psql("events", &sql.replace("?1", &format!("'{m}'"))).parse().unwrap() };
    assert_eq!(pgc("SELECT COUNT(*) FROM events WHERE event = 'open' AND path = ?1"), 3000);
    let all_sqlite: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(pgc("SELECT COUNT(*) FROM events WHERE ?1 = ?1"), all_sqlite as u64, "both hold the same events");
    assert_eq!(pgc("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events WHERE ?1 = ?1"), all_sqlite as u64);
    let mut logged = 0;
    for f in std::fs::read_dir(dir.file("log")).unwrap() {
        let body = std::fs::read_to_string(f.unwrap().path()).unwrap();
        logged += body.lines().filter(|l| l.contains("\"event\":\"open\"") && l.contains(&m)).count();
    }
    assert_eq!(logged, 3000, "the log has them too");
}

/// spool_full_action = drop_oldest: PostgreSQL down, a 1 MiB spool overflows; status counts
/// what was dropped, the spool keeps to its size, and stored + spooled + dropped accounts for
/// every event the daemon took.
#[test]
fn daemon_drop_oldest_counts_what_a_full_spool_drops() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let pg = Postgres::start();
    let dir = TempDir::new("daemon-drop");
    let (conf, marker) = (dir.file("tracer.conf"), dir.file("marker"));
    std::fs::write(&marker, "x").unwrap();
    std::fs::write(
        &conf,
        format!(
            "log_file = {}\nlog_format = json\noutput = {}\nspool_dir = {}\nspool_size = 1\nspool_full_action = drop_oldest\n",
            dir.file("log/tracer.log").display(),
            pg.url(),
            dir.file("spool").display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(tracer_bin())
        .args(["daemon", "--config"])
        .arg(&conf)
        .env("PGPASSWORD", pg::PASSWORD)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    wait_status(pid, "the output", |v| v["outputs"].as_array().is_some_and(|a| a.len() == 1));
    pg.stop();
    // About 600 bytes a row in the spool: 5000 opens are well over 1 MiB.
    opens(&marker, 5000);
    let v = wait_status(pid, "drops counted", |v| v["outputs"][0]["dropped"].as_u64().unwrap() > 0);
    let text = Command::new(tracer_bin()).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("output {} stored ", pg.url())) && !text.contains(" dropped 0 "), "{text}");
    let bytes: u64 = std::fs::read_dir(dir.file("spool"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert!(bytes <= 1 << 20, "the spool keeps to its size: {bytes} ({v})");
    kill(pid, libc::SIGTERM);
    let st = wait_exit(&mut daemon, 30);
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    // `daemon stopping: N events, ...` and `output URL: store: S stored, P spooled, D dropped`.
    let events: u64 = err
        .lines()
        .find_map(|l| l.split("daemon stopping: ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let line =
        err.lines().find(|l| l.contains("output ") && l.contains(": store: ")).unwrap_or_else(|| panic!("{err}"));
    let num = |suffix: &str| -> u64 {
        let i = line.find(suffix).unwrap_or_else(|| panic!("{suffix} in {line}"));
        line[..i].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (stored, spooled, dropped) = (num(" stored"), num(" spooled"), num(" dropped"));
    assert!(dropped > 0, "{line}");
    assert_eq!(stored + spooled + dropped, events, "every event accounted for: {err}");
}
