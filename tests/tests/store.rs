//! `tracer trace --output sqlite:PATH|postgresql://...` end to end: the real tracer on the
//! running kernel writing into a real SQLite file and a real PostgreSQL 15 cluster that
//! each test starts (and stops, to prove an outage loses nothing).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::{pg::Postgres, *};

/// `sh -c` running `/bin/true MARK` N times (N known exec events with MARK in argv).
fn loop_of(n: u32, mark: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do /bin/true {mark}; i=$((i+1)); done")
}

fn tracer(output: &str, extra: &[&str], env: &[(&str, &str)], script: &str) -> Command {
    let mut c = Command::new(tracer_bin());
    c.args(["trace", "--output", output]).args(extra).args(["--", "/bin/sh", "-c", script]);
    // Nothing of the runner's libpq settings: no password, no TLS mode or root certificate.
    c.env_remove("PGPASSWORD").env_remove("PGSSLMODE").env_remove("PGSSLROOTCERT");
    c.env("PGPASSFILE", "/nonexistent").env("HOME", "/nonexistent").envs(env.iter().copied());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The event count of the closing line (`tracer: N events, ...`) and the stored count of
/// the store line (`tracer: store: N stored, ...`).
fn closing(o: &Output) -> (u64, u64) {
    let e = stderr(o);
    let num = |prefix: &str, suffix: &str| -> u64 {
        let l = e
            .lines()
            .find(|l| {
                l.starts_with(prefix)
                    && l.contains(suffix)
                    && l[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
            })
            .unwrap_or_else(|| panic!("no {prefix:?} line: {e}"));
        l[prefix.len()..].split(suffix).next().unwrap().trim().parse().unwrap()
    };
    (num("tracer: ", " events"), num("tracer: store: ", " stored"))
}

#[test]
fn sqlite_holds_every_traced_event_exactly_once() {
    let dir = TempDir::new("sqlite");
    let db = dir.file("events.db");
    let target = format!("sqlite:{}", db.display());
    let o = tracer(&target, &[], &[], &loop_of(40, "sqlite-mark")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (events, stored) = closing(&o);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(q("SELECT COUNT(*) FROM events WHERE event = 'exec' AND argv = '[\"/bin/true\",\"sqlite-mark\"]'"), 40);
    assert_eq!(q("SELECT COUNT(*) FROM events") as u64, events, "every event the tracer counted is a row");
    assert_eq!(stored, events);
    assert_eq!(q("SELECT COUNT(DISTINCT seq) FROM events") as u64, events);
    assert_eq!(q("SELECT version FROM tracer_schema"), 1);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    // The JSON format's fields, in their columns.
    let (auid, uid, filename, cwd, time): (Option<i64>, i64, String, String, String) = conn
        .query_row(
            "SELECT auid, uid, filename, cwd, time FROM events WHERE argv = '[\"/bin/true\",\"sqlite-mark\"]' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert!(
        auid.is_some() && uid == 0 && filename.ends_with("/true") && cwd.starts_with('/') && time.ends_with('Z'),
        "{auid:?} {uid} {filename} {cwd} {time}"
    );

    // Two more runs at once into the same file: sequences never meet, nothing is skipped.
    let max1 = q("SELECT MAX(seq) FROM events");
    let both =
        [tracer(&target, &[], &[], &loop_of(30, "sqlite-x")), tracer(&target, &[], &[], &loop_of(30, "sqlite-y"))]
            .map(|mut c| c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let mut more = 0;
    for c in both {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        more += closing(&o).0;
    }
    assert_eq!(q("SELECT COUNT(*) FROM events") as u64, events + more);
    assert_eq!(q("SELECT COUNT(DISTINCT seq) FROM events") as u64, events + more);
    assert!(q("SELECT MIN(seq) FROM events WHERE argv LIKE '%sqlite-x%'") > max1, "the sequence only grows");
}

fn pgpass(dir: &TempDir, pg: &Postgres, password: &str) -> String {
    let f = dir.file("pgpass");
    std::fs::write(&f, format!("127.0.0.1:{}:events:{}:{password}\n", pg.port, pg::USER)).unwrap();
    f.display().to_string()
}

#[test]
fn postgresql_holds_every_traced_event_exactly_once() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgrun");
    let pass = pgpass(&dir, &pg, pg::PASSWORD);
    let spool = dir.file("spool").display().to_string();
    let env = [("PGPASSFILE", pass.as_str())];
    let o = tracer(&pg.url(), &["--spool", &spool], &env, &loop_of(60, "pg-mark")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (events, stored) = closing(&o);
    assert_eq!(stored, events, "{}", stderr(&o));
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"pg-mark\"]'"), 60);
    assert_eq!(count("SELECT COUNT(*) FROM events"), events);
    assert_eq!(count("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events"), events);
    assert_eq!(count("SELECT version FROM tracer_schema"), 1);
    // Partitioned by day, the rows in today's partition.
    let part = pg.psql("events", "SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')");
    assert_eq!(count(&format!("SELECT COUNT(*) FROM {part}")), events);
    assert_eq!(pg.psql("events", "SELECT relkind FROM pg_class WHERE relname = 'events'"), "p");
    // Each day is split by HASH (seq) into the writer's lanes, and the writer sent each row
    // over the connection of the table the server put it in (its hash agrees with the
    // server's for every row; a disagreement would cost speed, not rows).
    assert_eq!(pg.psql("events", &format!("SELECT relkind FROM pg_class WHERE relname = '{part}'")), "p");
    let lanes = tracer_store::pg::lanes::LANES;
    for lane in 0..lanes {
        let seqs = pg.psql("events", &format!("SELECT string_agg(seq::text, ' ') FROM {part}_{lane}"));
        let seqs: Vec<i64> = seqs.split_whitespace().map(|s| s.parse().unwrap()).collect();
        assert!(!seqs.is_empty() || events < 8, "lane {lane} of {lanes} holds rows");
        for seq in seqs {
            assert_eq!(tracer_store::pg::lanes::lane_of(seq), lane, "seq {seq} is in {part}_{lane}");
        }
    }
    for ix in ["events_auid_time", "events_key_time", "events_path", "events_exe"] {
        assert_eq!(count(&format!("SELECT COUNT(*) FROM pg_indexes WHERE indexname = '{ix}'")), 1, "{ix}");
    }
    // The key and path indexes hold only rows that have one, and the questions by key and
    // by path use them (on every partition: the plan scans each lane's own index).
    for (ix, question, used) in [
        ("events_key_time", "key = 'sshd' AND time > now() - interval '1 day'", "_key_time_idx"),
        ("events_path", "path = '/etc/shadow'", "_path_idx"),
    ] {
        let def = pg.psql("events", &format!("SELECT indexdef FROM pg_indexes WHERE indexname = '{ix}'"));
        assert!(def.ends_with("IS NOT NULL)"), "{def}");
        let plan =
            pg.psql("events", &format!("SET enable_seqscan = off; EXPLAIN SELECT * FROM events WHERE {question}"));
        // Today's lanes (tomorrow's partition is made already and planned too).
        let scans = plan
            .lines()
            .filter(|l| l.contains("Index Scan") && l.contains(used) && l.contains(&format!(" on {part}_")))
            .count();
        assert_eq!(scans as u64, lanes, "{question}: {plan}");
    }
    assert!(!stderr(&o).contains(pg::PASSWORD));
    // The spool was not needed and is empty.
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

#[test]
fn retention_drops_day_partitions_older_than_the_setting() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgretain");
    let spool = dir.file("spool").display().to_string();
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let o = tracer(&pg.url(), &["--spool", &spool], &env, "true").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Two old days, as a long-running fleet would have them.
    for (name, from, to) in
        [("events_20200101", "2020-01-01", "2020-01-02"), ("events_20200102", "2020-01-02", "2020-01-03")]
    {
        pg.psql("events", &format!("CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{from}') TO ('{to}')"));
    }
    let parts = || {
        pg.psql(
            "events",
            "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class WHERE relname ~ '^events_[0-9]{8}$'",
        )
    };
    assert_eq!(parts().split(' ').count(), 4, "two old days, today and tomorrow: {}", parts());
    let o = tracer(&pg.url(), &["--spool", &spool, "--retention-days", "30"], &env, "true").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let days = pg.psql(
        "events",
        "SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || ' events_' || \
         to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')",
    );
    assert_eq!(parts(), days, "only today's partition is left, and tomorrow's made ahead");
}

fn wait_for(p: &Path, what: &str) {
    let t = Instant::now();
    while !p.exists() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn postgresql_outage_mid_run_loses_nothing_and_duplicates_nothing() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgdown");
    let spool = dir.file("spool").display().to_string();
    let (m1, m2, m3) = (dir.file("m1"), dir.file("m2"), dir.file("m3"));
    // 100 execs with the database up, 100 while it is down, 100 after it is back.
    let script = format!(
        "{a}; touch {m1}; while [ ! -e {m2} ]; do sleep 0.05; done; {b}; touch {m1}.b; \
         while [ ! -e {m3} ]; do sleep 0.05; done; {c}",
        a = loop_of(100, "up"),
        b = loop_of(100, "down"),
        c = loop_of(100, "back"),
        m1 = m1.display(),
        m2 = m2.display(),
        m3 = m3.display(),
    );
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let child = tracer(&pg.url(), &["--spool", &spool], &env, &script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&m1, "the first 100");
    // Let the tracer's batch of the first 100 reach the database, then take it away.
    std::thread::sleep(Duration::from_millis(500));
    pg.stop();
    std::fs::write(&m2, "").unwrap();
    wait_for(&dir.file("m1.b"), "the 100 made during the outage");
    std::thread::sleep(Duration::from_millis(1500));
    let spooled = std::fs::read_dir(&spool).unwrap().count();
    assert!(spooled > 0, "batches wait in the spool while the database is down");
    pg.start_again();
    std::fs::write(&m3, "").unwrap();
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("database unavailable") && e.contains("database back"), "{e}");
    let (events, stored) = closing(&o);
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    for mark in ["up", "down", "back"] {
        assert_eq!(
            count(&format!("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"{mark}\"]'")),
            100,
            "{mark}"
        );
    }
    assert_eq!(count("SELECT COUNT(*) FROM events"), events, "{e}");
    assert_eq!(count("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events"), events, "no duplicates");
    assert_eq!(stored, events, "{e}");
    assert!(e.contains(", 0 spooled, 0 dropped"), "{e}");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "the spool was replayed and emptied");
    println!("outage: {spooled} batches spooled, {events} events, all stored once");
}

#[test]
fn a_spool_left_by_a_run_that_ended_in_an_outage_is_replayed_by_the_next() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgleft");
    let spool = dir.file("spool").display().to_string();
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let m = dir.file("m");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done; {}", m.display(), loop_of(50, "left"));
    let child = tracer(&pg.url(), &["--spool", &spool], &env, &script).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    pg.stop();
    std::fs::write(&m, "").unwrap();
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let (events, _) = closing(&o);
    assert!(e.contains("waits in"), "the closing line says where the events wait: {e}");
    pg.start_again();
    let o2 = tracer(&pg.url(), &["--spool", &spool], &env, "true").output().unwrap();
    assert!(o2.status.success(), "{}", stderr(&o2));
    let (events2, _) = closing(&o2);
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"left\"]'"), 50);
    assert_eq!(count("SELECT COUNT(*) FROM events"), events + events2);
    assert_eq!(count("SELECT COUNT(DISTINCT (machine_id, seq)) FROM events"), events + events2);
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgfull");
    let spool = dir.file("spool").display().to_string();
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let m = dir.file("m");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done; {}", m.display(), loop_of(100, "full"));
    let child =
        tracer(&pg.url(), &["--spool", &spool, "--spool-size", "64K", "--spool-full", "drop-oldest"], &env, &script)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let before: u64 = pg.psql("events", "SELECT COUNT(*) FROM events").parse().unwrap();
    pg.stop();
    std::fs::write(&m, "").unwrap();
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let (events, stored) = closing(&o);
    let num = |suffix: &str| -> u64 {
        let l = e.lines().find(|l| l.starts_with("tracer: store: ")).unwrap();
        let i = l.find(suffix).unwrap_or_else(|| panic!("{suffix} in {l}"));
        l[..i].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (spooled, dropped) = (num(" spooled"), num(" dropped"));
    assert!(dropped > 0, "64K cannot hold the outage: {e}");
    let bytes: u64 = std::fs::read_dir(&spool).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum();
    assert!(bytes <= 64 << 10, "the spool stays within its size: {bytes}");
    // Every event is accounted for: in the database, in the spool, or counted as dropped.
    pg.start_again();
    let stored_now: u64 = pg.psql("events", "SELECT COUNT(*) FROM events").parse().unwrap();
    assert!(before <= stored);
    assert_eq!(stored + spooled + dropped, events, "{e}");
    // Rows counted as stored are there. More can be: a commit the server made as it stopped,
    // whose acknowledgement never came, left its rows in the spool, and drop-oldest dropped
    // them before any replay could find them stored (README: counted as dropped). At most
    // the lanes' last batch, and never more than was dropped.
    assert!(stored_now >= stored && stored_now - stored <= dropped.min(16_384), "{stored_now} in the database: {e}");
}

#[test]
fn a_database_that_cannot_be_used_is_one_clear_error_at_start() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgbad");
    let closed = closed_port();
    let wrong = [("PGPASSWORD", "not-the-password")];
    let good = [("PGPASSWORD", pg::PASSWORD)];
    let norights = format!("postgresql://norights@127.0.0.1:{}/events", pg.port);
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(String, Env, &str)> = vec![
        (format!("postgresql://tracer@127.0.0.1:{closed}/events"), &good, "Connection refused"),
        (pg.url(), &wrong, "password authentication failed"),
        (pg.url(), &[], "password"),
        (norights, &good, "permission denied"),
        (format!("{}?sslmode=verify-full", pg.url()), &good, "no root certificate"),
        (format!("postgresql://127.0.0.1:{}/events", pg.port), &good, "USER@HOST"),
        (format!("postgresql://tracer@127.0.0.1:{}/nosuchdb", pg.port), &good, "nosuchdb"),
        ("sqlite:".into(), &good, "needs a path"),
        (format!("sqlite:{}/no/such/dir/x.db", dir.path().display()), &good, "sqlite"),
    ];
    for (url, env, want) in cases {
        let o =
            tracer(&url, &["--spool", &dir.file("spool").display().to_string()], env, "/bin/true").output().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{url}: {e}");
        assert!(e.contains(want), "{url}: wanted {want:?} in: {e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(!e.contains(pg::PASSWORD) && !e.contains("not-the-password"), "{e}");
    }
    // `report --output` is the report's file: a database there is a usage error, not a file
    // named "sqlite:...".
    let db = dir.file("r.db");
    let o = Command::new(tracer_bin())
        .args(["report", "--input", "/dev/null", "--output", &format!("sqlite:{}", db.display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!db.exists());
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// SIGINT, then the exit status and stderr.
fn stop(c: std::process::Child) -> (bool, String) {
    // SAFETY: kill takes plain integers; the tracer is our child, not yet reaped.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    let o = c.wait_with_output().unwrap();
    (o.status.success(), stderr(&o))
}

fn report(input: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    let o = Command::new(tracer_bin())
        .args(["report", "--input", input])
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "report --input {input}: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn report_from_the_databases_equals_report_from_the_json_file() {
    let pg = Postgres::start();
    let dir = TempDir::new("storereport");
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let go = dir.file("go");
    let auid = 7_140_000 + std::process::id() % 10_000;
    let w = env!("CARGO_BIN_EXE_workload");
    // The workload runs under its own login UID once every tracer sees the target.
    let work = format!(
        "{w} --loginuid {auid} --ids 7005:7005 open-n:3:/etc/hostname open:/nonexistent/x open:{dir}/caf$(printf '\\377') \
         exec-n:2:/bin/true connect:127.0.0.1:9 abstract:tracer-store-abs -- /bin/sh -c true",
        dir = dir.path().display()
    );
    let script = format!("while [ ! -e {go} ]; do sleep 0.05; done; {work}", go = go.display());
    let target = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let pid = target.id().to_string();
    let json = dir.file("ev.json");
    let db = dir.file("ev.db");
    let spool = dir.file("spool").display().to_string();
    let spawn = |out: &str| {
        Command::new(tracer_bin())
            .args(["trace", "--format", "json", "--pid", &pid, "--output", out, "--spool", &spool])
            .envs(env)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let tracers = [spawn(json.to_str().unwrap()), spawn(&format!("sqlite:{}", db.display())), spawn(&pg.url())];
    // Every tracer is attached once it has stored one of the target's polling sleeps.
    let t = Instant::now();
    let seen = || {
        let j = std::fs::read_to_string(&json).unwrap_or_default().contains("\"comm\":\"sleep\"");
        let s = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM events WHERE comm = 'sleep'", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0);
        let p =
            pg.psql("events", "SELECT COUNT(*) FROM (SELECT 1 FROM pg_tables WHERE tablename = 'events') t").as_str()
                == "1"
                && pg.psql("events", "SELECT COUNT(*) FROM events WHERE comm = 'sleep'") != "0";
        j && s && p
    };
    while !seen() {
        assert!(t.elapsed() < Duration::from_secs(60), "the tracers never all saw the target");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&go, "").unwrap();
    let st = target.wait_with_output().unwrap();
    assert!(st.status.success());
    std::thread::sleep(Duration::from_millis(300));
    for c in tracers {
        let (ok, e) = stop(c);
        assert!(ok && e.contains(" 0 lost"), "{e}");
    }
    let a = auid.to_string();
    let from_json = report(json.to_str().unwrap(), &["--auid", &a], &env);
    assert!(from_json.contains("/etc/hostname") && from_json.contains("127.0.0.1:9"), "{from_json}");
    // An abstract socket's name starts with NUL, which PostgreSQL text cannot hold: stored as
    // `\x00`, read back as the byte.
    assert!(from_json.contains("@tracer-store-abs"), "{from_json}");
    for input in [format!("sqlite:{}", db.display()), pg.url()] {
        assert_eq!(report(&input, &["--auid", &a], &env), from_json, "{input}");
        let j = report(json.to_str().unwrap(), &["--auid", &a, "--format", "json"], &env);
        assert_eq!(report(&input, &["--auid", &a, "--format", "json"], &env), j, "{input}");
        // Per host: this host's report is the same; another host's is empty.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
        let by = report(&input, &["--auid", &a, "--by-host"], &env);
        assert_eq!(by, format!("Host: {host}\n\n{from_json}"), "{input}");
        assert_eq!(report(&input, &["--auid", &a, "--host", &host], &env), from_json);
        let none = report(&input, &["--auid", &a, "--host", "no-such-host"], &env);
        assert!(!none.contains("/etc/hostname"), "{none}");
        let later = report(&input, &["--auid", &a, "--since", "2200-01-01"], &env);
        assert!(!later.contains("/etc/hostname"), "{later}");
    }
    println!("{from_json}");
}

/// A server that takes TCP connections over TLS only (so every row stored came over TLS),
/// with a certificate for `localhost` from a CA of the test's: each `sslmode` checks what
/// libpq says it checks, with the root certificate from the URL, the environment or
/// `~/.postgresql/root.crt` (the address 127.0.0.1 is not in the certificate; another CA
/// signed nothing of the server's).
#[test]
fn postgresql_over_tls_checks_what_sslmode_says() {
    let pg = Postgres::start();
    let (ca, other_ca) = pg.require_tls();
    let dir = TempDir::new("pgtls");
    // Homes whose ~/.postgresql/root.crt is the server's CA, another CA, or missing.
    let home = |name: &str, root: Option<&Path>| {
        let h = dir.file(name);
        std::fs::create_dir_all(h.join(".postgresql")).unwrap();
        if let Some(r) = root {
            std::fs::copy(r, h.join(".postgresql/root.crt")).unwrap();
        }
        h.display().to_string()
    };
    let (good_home, other_home, no_home) =
        (home("good", Some(&ca)), home("other", Some(&other_ca)), home("none", None));
    let spool = dir.file("spool").display().to_string();
    // `hostaddr` connects to the address; the certificate is checked for the host's name.
    let url = |host: &str, query: &str| {
        format!("postgresql://{}@{host}:{}/events?hostaddr=127.0.0.1&{query}", pg::USER, pg.port)
    };
    let (ca, other_ca) = (ca.display().to_string(), other_ca.display().to_string());
    let run = |url: &str, env: &[(&str, &str)], mark: &str| {
        let env = [&[("PGPASSWORD", pg::PASSWORD), ("HOME", no_home.as_str())][..], env].concat();
        tracer(url, &["--spool", &spool], &env, &loop_of(10, mark)).output().unwrap()
    };
    let stored = |mark: &str| -> u64 {
        pg.psql("events", &format!("SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"{mark}\"]'"))
            .parse()
            .unwrap()
    };
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    let env_full = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca.as_str())];
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(String, Env, &str); 6] = [
        (url("localhost", &full), &[], "tls-full"),
        // The chain is checked, not the name.
        (url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")), &[], "tls-ca"),
        (url("localhost", &format!("sslmode=require&sslrootcert={ca}")), &[], "tls-require"),
        (url("localhost", "sslmode=verify-full"), &[("HOME", &good_home)], "tls-home"),
        (url("localhost", ""), &env_full, "tls-env"),
        // libpq's default, `prefer`: TLS, since the server offers it (and takes nothing else).
        (url("localhost", ""), &[], "tls-prefer"),
    ];
    for (url, env, mark) in cases {
        let o = run(&url, env, mark);
        assert!(o.status.success(), "{url} {env:?}: {}", stderr(&o));
        assert_eq!(stored(mark), 10, "{url} {env:?}");
    }
    let env_other = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", other_ca.as_str())];
    let cases: [(String, Env, &str); 9] = [
        (url("127.0.0.1", &full), &[], "not valid for name"),
        (url("localhost", &format!("sslmode=verify-full&sslrootcert={other_ca}")), &[], "UnknownIssuer"),
        (url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={other_ca}")), &[], "UnknownIssuer"),
        // require checks the chain when there is a root certificate, as libpq.
        (url("localhost", &format!("sslmode=require&sslrootcert={other_ca}")), &[], "UnknownIssuer"),
        (url("localhost", "sslmode=require"), &[("HOME", &other_home)], "UnknownIssuer"),
        (url("localhost", ""), &env_other, "UnknownIssuer"),
        (url("localhost", "sslmode=verify-ca"), &[], "no root certificate"),
        (url("localhost", "sslmode=disable"), &[], "no encryption"),
        (url("localhost", "sslmode=verify"), &[], "sslmode=verify: the mode is"),
    ];
    for (url, env, want) in cases {
        let o = run(&url, env, "tls-refused");
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{url} {env:?}: {e}");
        assert!(e.contains(want), "{url} {env:?}: wanted {want:?} in: {e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(!e.contains(pg::PASSWORD), "{e}");
    }
    assert_eq!(stored("tls-refused"), 0);
}

/// `sslmode=require` against a server without TLS: no connection, never a plain one. Over
/// the server's Unix socket the mode is ignored, as libpq does (nothing to encrypt there).
#[test]
fn sslmode_require_is_never_downgraded() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgnotls");
    let env = [("PGPASSWORD", pg::PASSWORD)];
    let spool = dir.file("spool").display().to_string();
    let o = tracer(&format!("{}?sslmode=require", pg.url()), &["--spool", &spool], &env, &loop_of(3, "no-tls"))
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("does not support TLS"), "{e}");
    assert_eq!(pg.psql("events", "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'events'"), "0");
    let sock = pg.sock().display().to_string().replace('/', "%2F");
    let over_socket = format!("postgresql://{}@{sock}:{}/events?sslmode=require", pg::USER, pg.port);
    let o = tracer(&over_socket, &["--spool", &spool], &env, &loop_of(3, "socket")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let n = pg.psql("events", "SELECT COUNT(*) FROM events WHERE argv = '[\"/bin/true\",\"socket\"]'");
    assert_eq!(n, "3");
}
