//! `tracer report --input DATABASE` reads, never writes: a role with SELECT alone (in a
//! read-only session, without the right to make even a temp table) reports; a database
//! without the tracer's schema, or with another version of it, is one clear error (exit 2)
//! and is left as it was. Against a real PostgreSQL 15 and real SQLite files.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::process::{Command, Output};

use tracer_tests::{pg::Postgres, *};

const READER_PW: &str = "read-0nly-pw";

fn report(input: &str, env: &[(&str, &str)]) -> Output {
    Command::new(tracer_bin())
        .args(["report", "--input", input])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/nonexistent")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, one line on stderr holding WANT, no password, nothing on stdout.
fn refused(o: &Output, what: &str, want: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {e}");
    assert_eq!(e.lines().count(), 1, "{what}: one line: {e}");
    assert!(e.contains(want), "{what}: wanted {want:?} in: {e}");
    assert!(!e.contains(pg::PASSWORD) && !e.contains(READER_PW), "{what}: {e}");
    assert!(o.stdout.is_empty(), "{what}: no partial report");
}

/// What a writer would change: tables, their columns and the recorded version.
fn shape(pg: &Postgres) -> String {
    pg.psql(
        "events",
        "SELECT (SELECT string_agg(relname::text || ':' || relkind::text, ' ' ORDER BY relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public') || ' v' || \
         (SELECT string_agg(version::text, ',') FROM tracer_schema)",
    )
}

#[test]
fn a_read_only_role_reports_and_bad_stores_are_refused() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgread");
    let spool = dir.file("spool").display().to_string();
    let writer = [("PGPASSWORD", pg::PASSWORD)];
    let o = Command::new(tracer_bin())
        .args(["trace", "--output", &pg.url(), "--spool", &spool, "--", "/bin/sh", "-c"])
        .arg("for i in 1 2 3 4 5; do /bin/true read-mark; done")
        .envs(writer)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // A role that may read and nothing else: SELECT on the tables, a read-only session, no
    // temp tables (revoked from PUBLIC; the writer owns the database and keeps them).
    pg.psql("postgres", &format!("CREATE ROLE reader LOGIN PASSWORD '{READER_PW}'"));
    pg.psql("postgres", "ALTER ROLE reader SET default_transaction_read_only = on");
    pg.psql("events", "REVOKE TEMPORARY ON DATABASE events FROM PUBLIC");
    pg.psql("events", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader");
    let reader = format!("postgresql://reader@127.0.0.1:{}/events", pg.port);
    let renv = [("PGPASSWORD", READER_PW)];
    let before = shape(&pg);

    let as_writer = report(&pg.url(), &writer);
    assert!(as_writer.status.success(), "{}", stderr(&as_writer));
    let as_reader = report(&reader, &renv);
    assert!(as_reader.status.success(), "the read-only role reports: {}", stderr(&as_reader));
    let text = String::from_utf8(as_reader.stdout).unwrap();
    assert!(text.contains("/bin/true read-mark"), "{text}");
    assert_eq!(text.as_bytes(), as_writer.stdout, "the same report whoever asks");
    assert_eq!(shape(&pg), before, "reports changed nothing");

    // The reader may not write: the store as its target is refused at start (it would migrate
    // or insert), one line.
    let o = Command::new(tracer_bin())
        .args(["trace", "--output", &reader, "--spool", &spool, "--", "/bin/true"])
        .env("PGPASSFILE", "/nonexistent")
        .envs(renv)
        .output()
        .unwrap();
    refused(&o, "trace as the reader", "read-only transaction");

    // Another version of the schema: a reader neither guesses nor migrates.
    pg.psql("events", "UPDATE tracer_schema SET version = 0");
    refused(&report(&reader, &renv), "older schema", "schema version 0 is older");
    pg.psql("events", "UPDATE tracer_schema SET version = 99");
    refused(&report(&reader, &renv), "newer schema", "schema version 99 is newer");
    pg.psql("events", "UPDATE tracer_schema SET version = 1");
    assert_eq!(shape(&pg), before);

    // A database the tracer never wrote, an unreachable server, a wrong password, a bad URL.
    let port = pg.port;
    refused(&report(&format!("postgresql://reader@127.0.0.1:{port}/postgres"), &renv), "no schema", "no tracer schema");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    refused(
        &report(&format!("postgresql://reader@127.0.0.1:{closed}/events"), &renv),
        "unreachable",
        "Connection refused",
    );
    refused(&report(&reader, &[("PGPASSWORD", "wrong")]), "wrong password", "password authentication failed");
    refused(&report(&format!("postgresql://reader@127.0.0.1:{port}x/events"), &renv), "bad port", "bad database URL");
    refused(&report("postgresql://127.0.0.1/events", &renv), "no user", "USER@HOST");

    // A misspelled target is an error, never a local file of that name.
    for bad in ["sqlite3:events.db", "postgresq://reader@127.0.0.1/events", "mysql://u:pw@h/db"] {
        let o = Command::new(tracer_bin())
            .args(["trace", "--output", bad, "--", "/bin/true"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        refused(&o, bad, "unknown scheme");
        assert!(!stderr(&o).contains(":pw@"), "{}", stderr(&o));
        let o = Command::new(tracer_bin()).args(["report", "--input", bad]).current_dir(dir.path()).output().unwrap();
        refused(&o, bad, "unknown scheme");
        let o = Command::new(tracer_bin())
            .args(["report", "--input", "/dev/null", "--output", bad])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "report --output {bad}: {}", stderr(&o));
    }
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!made.iter().any(|n| n.to_string_lossy().contains(':')), "no file named like a URL: {made:?}");

    // SQLite: a missing file is not created; a file without the schema is not the tracer's.
    let missing = dir.file("missing.db");
    refused(&report(&format!("sqlite:{}", missing.display()), &[]), "missing sqlite", "no such database file");
    assert!(!missing.exists(), "a report creates no database");
    let other = dir.file("other.db");
    rusqlite::Connection::open(&other).unwrap().execute("CREATE TABLE t (x INTEGER)", []).unwrap();
    refused(&report(&format!("sqlite:{}", other.display()), &[]), "foreign sqlite", "no tracer schema");
}

/// The table (day partition and lane) holding the row of the first sequence number in SEQS
/// that LANE carries.
fn lane_table(pg: &Postgres, seqs: std::ops::Range<i64>, lane: u64) -> String {
    let seq = seqs.into_iter().find(|&s| tracer_store::pg::lanes::lane_of(s) == lane).unwrap();
    pg.psql("events", &format!("SELECT tableoid::regclass FROM events WHERE seq = {seq}"))
}

/// A session of its own holding TABLE locked (in a transaction) until it commits.
fn lock(pg: &Postgres, table: &str) -> postgres::Client {
    let mut locker = tracer_store::pg::client(&pg.url_with_password()).unwrap();
    locker.batch_execute(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")).unwrap();
    locker
}

/// A writer's connection to PG (keeping RETENTION days, 0: all), and exec rows of HOST with
/// sequence numbers FROM..TO, timed just before now (today's partition).
fn writer_and_rows(
    pg: &Postgres,
    retention: u32,
) -> (tracer_store::pg::Pg, impl Fn(&str, i64, i64) -> Vec<tracer_store::Row>) {
    let db = tracer_store::pg::Pg::connect(&pg.url_with_password(), retention).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let rows = move |host: &str, from: i64, to: i64| {
        (from..to)
            .map(|seq| tracer_store::Row {
                machine_id: format!("{host}-host"),
                hostname: host.into(),
                seq,
                event: "exec".into(),
                time_ns: now - 1_000_000 + seq,
                comm: "x".into(),
                root: "/".into(),
                ..tracer_store::Row::default()
            })
            .collect()
    };
    (db, rows)
}

/// A batch goes over two connections at once (one per hash partition of the day). When one
/// fails after the other committed, the committed rows are counted as stored; the batch,
/// kept and replayed, then stores only the rest: every row once, and counted once.
#[test]
fn a_batch_half_stored_by_its_lanes_is_counted_once() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    let rows = rows("lanes", 1, 1001);
    // The day's partition exists (a first batch made it); then the newest backend of the
    // writer's two, its second lane, is ended by the server.
    assert_eq!(db.insert(&rows[..10]).unwrap().new, 10);
    let killed = pg.psql(
        "events",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = \
         (SELECT MAX(pid) FROM pg_stat_activity WHERE datname = 'events' AND backend_type = 'client backend' \
          AND pid <> pg_backend_pid())",
    );
    assert_eq!(killed, "t");
    let partial = db.insert(&rows).unwrap_err();
    let first = partial.done.new;
    assert!(first > 300 && first < 700, "one lane of two committed its new rows: {}", partial.error);
    // What is left to keep is the failed lane's rows alone (a full spool that drops them
    // counts only those).
    let pending = partial.pending;
    let lane = tracer_store::pg::lanes::lane_of(pending[0].seq);
    assert!(pending.iter().all(|r| tracer_store::pg::lanes::lane_of(r.seq) == lane));
    assert_eq!(pending.len(), rows.iter().filter(|r| tracer_store::pg::lanes::lane_of(r.seq) == lane).count());
    let (mut db, _) = writer_and_rows(&pg, 0);
    let second = db.insert(&pending).unwrap().new;
    assert_eq!(10 + first + second, 1000, "counted once: {first} + {second}");
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE machine_id = 'lanes-host'"), 1000);
}

/// The lanes do not wait for each other: while one lane is held (its table locked by another
/// session), the other stores its part of this batch and of the next one, committed and
/// visible; the held lane then stores its parts, and each batch is answered whole, in order.
/// Before, both lanes ended every batch together, and one held lane held the other.
#[test]
fn a_lane_goes_on_to_the_next_batch_while_the_other_is_held() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    assert_eq!(db.insert(&rows("ahead", 1, 11)).unwrap().new, 10, "the day's tables are made");
    let (held, free) = (lane_table(&pg, 1..11, 1), lane_table(&pg, 1..11, 0));
    let in_table = |t: &str| -> usize { pg.psql("events", &format!("SELECT COUNT(*) FROM {t}")).parse().unwrap() };
    let before = in_table(&free);
    let mut locker = lock(&pg, &held);

    let (first, second) = (rows("ahead", 11, 1011), rows("ahead", 1011, 2011));
    let free_rows = |b: &[tracer_store::Row]| b.iter().filter(|r| tracer_store::pg::lanes::lane_of(r.seq) == 0).count();
    let want = before + free_rows(&first) + free_rows(&second);
    db.send(first).unwrap();
    db.send(second).unwrap();
    assert_eq!(db.in_flight(), 2);
    let t = std::time::Instant::now();
    while in_table(&free) < want && t.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(in_table(&free), want, "the free lane stored both its parts while the other lane was held");
    assert_eq!(db.in_flight(), 2, "neither batch is answered while a lane holds part of it");

    locker.batch_execute("COMMIT").unwrap();
    for (n, what) in [(1000, "first"), (1000, "second")] {
        let (rows, r) = db.receive().expect("a batch in flight");
        assert_eq!((rows, r.unwrap().new), (n, n as u64), "the {what} batch, whole");
    }
    assert!(db.receive().is_none());
    assert_eq!(pg.psql("events", "SELECT COUNT(*) FROM events WHERE machine_id = 'ahead-host'"), "2010");
}

/// A lane that fails with a batch behind it in flight: the writer waits for both batches,
/// counts what the other lane committed of each, keeps the failed lane's rows of both in its
/// spool, and replays them when the database is back: every row stored once, and counted
/// once. Here the held lane's backend is ended while it waits on a lock, after the other lane
/// has committed its part of the second batch.
#[test]
fn a_lane_failing_with_a_batch_behind_it_loses_nothing() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    assert_eq!(db.insert(&rows("made", 1, 11)).unwrap().new, 10, "the day's tables are made");
    drop(db);
    let (held, free) = (lane_table(&pg, 1..11, 1), lane_table(&pg, 1..11, 0));
    let dir = TempDir::new("pginflight");
    let mut w = tracer_store::writer::Writer::start(tracer_store::writer::Options {
        target: tracer_store::Target::Postgres(pg.url_with_password()),
        retention_days: 0,
        spool_dir: dir.file("spool"),
        spool_bytes: 1 << 20,
        on_full: tracer_store::spool::OnFull::Block,
        key: Some("inflight".into()),
    })
    .unwrap();
    // Taken once the writer is started (its start reads the highest stored sequence number,
    // which the lock would hold up).
    let mut locker = lock(&pg, &held);
    for (batch, comm) in [(1, "first"), (2, "second")] {
        for mut r in rows("ignored", batch * 1000, batch * 1000 + 100) {
            r.comm = comm.into();
            w.push(r).unwrap();
        }
        w.flush().unwrap();
    }
    // The free lane commits its part of each batch at once (one transaction each): a row of
    // the second in its table means both its parts are in.
    let t = std::time::Instant::now();
    let seen = || pg.psql("events", &format!("SELECT COUNT(*) > 0 FROM {free} WHERE comm = 'second'")) == "t";
    while !seen() && t.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen(), "the free lane went on to the second batch");
    let ended = pg.psql(
        "events",
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'events'",
    );
    assert_eq!(ended, "1", "the held lane's backend, waiting on the lock");
    locker.batch_execute("COMMIT").unwrap();

    let sum = w.close().unwrap();
    assert_eq!((sum.stored, sum.spooled, sum.dropped), (200, 0, 0), "{sum}");
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE key = 'inflight'"), 200);
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE key = 'inflight' AND comm = 'second'"), 100);
}

/// A commit whose acknowledgement was lost: the rows are in the database, yet the run that
/// sent them kept them in its spool (counted as spooled, not stored). The next run's replay
/// finds them there; it counts them as stored with the rows it adds, so over both runs every
/// event counts once (the flake this settles: stored + stored again fell short by one lane).
#[test]
fn a_replay_counts_rows_a_lost_acknowledgement_already_stored() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    let acked_lost = rows("lostack", 1, 101);
    assert_eq!(db.insert(&acked_lost).unwrap().new, 100);
    drop(db);
    let dir = TempDir::new("pglostack");
    let spool_dir = dir.file("spool");
    {
        let mut spool = tracer_store::spool::Spool::open(&spool_dir, 1 << 20).unwrap();
        let block = tracer_store::spool::OnFull::Block;
        assert!(spool.push(&acked_lost, block, false).unwrap());
        assert!(spool.push(&rows("lostack", 101, 151), block, false).unwrap());
    }
    let url = pg.url_with_password();
    let writer = tracer_store::writer::Writer::start(tracer_store::writer::Options {
        target: tracer_store::Target::Postgres(url),
        retention_days: 0,
        spool_dir: spool_dir.clone(),
        spool_bytes: 1 << 20,
        on_full: tracer_store::spool::OnFull::Block,
        key: None,
    })
    .unwrap();
    let sum = writer.close().unwrap();
    assert_eq!((sum.stored, sum.spooled, sum.dropped), (150, 0, 0), "{sum}");
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE machine_id = 'lostack-host'"), 150);
    assert!(tracer_store::spool::Spool::open(&spool_dir, 1 << 20).unwrap().is_empty(), "replayed");
}

/// Rows older than the retention setting (a spool replayed after an outage longer than it)
/// are stored; their day goes with the next sweep. Before, the sweep that followed making
/// their day dropped it before the rows landed, and the batch failed at every retry.
#[test]
fn rows_older_than_the_retention_are_stored_not_stuck() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 2);
    let ten_days = 10 * 86_400 * 1_000_000_000;
    let old: Vec<_> =
        rows("old", 1, 101).into_iter().map(|r| tracer_store::Row { time_ns: r.time_ns - ten_days, ..r }).collect();
    assert_eq!(db.insert(&old).unwrap().new, 100);
    // Today's first rows sweep the old day away, as the setting says.
    assert_eq!(db.insert(&rows("new", 1, 11)).unwrap().new, 10);
    assert_eq!(pg.psql("events", "SELECT COUNT(*) FROM events"), "10");
}

/// The retention sweep that comes with a new day spares the days of batches still in flight:
/// a batch of rows older than the retention (a replayed spool), queued behind a lane that is
/// held, still lands when the next batch brings a new day. Before, the sweep dropped its day
/// first and its rows were refused ("no partition"), counted as dropped.
#[test]
fn the_sweep_spares_the_day_of_a_batch_in_flight() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 3);
    const DAY: i64 = 86_400_000_000_000;
    let at = |days_ago: i64, from: i64, to: i64| -> Vec<tracer_store::Row> {
        rows("spare", from, to)
            .into_iter()
            .map(|r| tracer_store::Row { time_ns: r.time_ns - days_ago * DAY, ..r })
            .collect()
    };
    // Yesterday (kept), then a day ten days ago (past the retention, kept while its own rows
    // land); today is not made yet.
    assert_eq!(db.insert(&at(1, 1, 11)).unwrap().new, 10);
    assert_eq!(db.insert(&at(10, 11, 21)).unwrap().new, 10);
    let yesterday_1 = lane_table(&pg, 1..11, 1);
    let old_day = lane_table(&pg, 11..21, 0).trim_end_matches("_0").to_owned();
    let mut locker = lock(&pg, &yesterday_1);
    // Lane 1 is held on yesterday's batch; the old day's batch waits behind it. The next
    // batch brings today: its sweep runs while the old day's rows have not all landed. The
    // lock goes after a while (the third batch's hand-over waits for lane 1 to take the second).
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        locker.batch_execute("COMMIT").unwrap();
    });
    db.send(at(1, 100, 200)).unwrap();
    db.send(at(10, 200, 300)).unwrap();
    db.send(at(0, 300, 400)).unwrap();
    release.join().unwrap();
    for what in ["yesterday's", "the old day's", "today's"] {
        let (n, r) = db.receive().expect("a batch in flight");
        let r = r.unwrap_or_else(|p| panic!("{what} batch: {}", p.error));
        assert_eq!((r.new, r.refused), (n as u64, 0), "{what} batch, whole: {:?}", r.reason);
    }
    assert_eq!(pg.psql("events", &format!("SELECT COUNT(*) FROM {old_day}")), "110", "the old day kept its rows");
}

/// A day partition made whole by a tracer from before the lanes (or with another number of
/// them) is used as it is: the rows go over one connection and all land.
#[test]
fn a_day_made_unsplit_by_an_older_tracer_is_used_as_it_is() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    pg.psql(
        "events",
        "DO $$ DECLARE d timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'; BEGIN \
         EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', \
         'events_' || to_char(d AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + interval '1 day'); END $$",
    );
    assert_eq!(db.insert(&rows("old", 1, 1001)).unwrap().new, 1000);
    let part = pg.psql("events", "SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')");
    assert_eq!(pg.psql("events", &format!("SELECT relkind FROM pg_class WHERE relname = '{part}'")), "r");
    assert_eq!(pg.psql("events", &format!("SELECT COUNT(*) FROM {part}")), "1000");
}

/// Batches go straight into `events` by COPY; a batch already stored (a replay after a lost
/// acknowledgement) breaks the unique key, rolls back whole and is stored again through
/// `ON CONFLICT DO NOTHING`: only its new rows land.
#[test]
fn a_batch_stored_again_lands_once_in_postgresql() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    let rows = |from, to| rows("replay", from, to);
    assert_eq!(db.insert(&rows(0, 100)).unwrap().new, 100);
    assert_eq!(db.insert(&rows(0, 100)).unwrap().new, 0, "a replayed batch adds nothing");
    assert_eq!(db.insert(&rows(50, 150)).unwrap().new, 50, "half new: the new half lands");
    assert_eq!(db.insert(&rows(150, 200)).unwrap().new, 50, "and the fast path works after a fallback");
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE machine_id = 'replay-host'"), 200);
    assert_eq!(count("SELECT COUNT(DISTINCT seq) FROM events WHERE machine_id = 'replay-host'"), 200);
}

/// Every column a row carries comes back from PostgreSQL as it went in (the batches are
/// encoded in COPY's binary format by tracer-store itself): texts with quotes, tabs, a
/// backslash and non-ASCII letters, numbers at the ends of their ranges, both booleans,
/// NULLs; the time to the microsecond. Over both lanes, and through a replay's temp table.
#[test]
fn every_column_comes_back_from_postgresql_as_it_went_in() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    let base = rows("cols", 1, 2).remove(0);
    let full = |seq: i64| tracer_store::Row {
        seq,
        time_ns: base.time_ns - 123_456_789 + seq,
        key: Some("k\tey \"quoted\" \\ é".into()),
        pid: i64::from(i32::MAX),
        tid: 1,
        ppid: Some(0),
        uid: 4_294_967_294,
        gid: 0,
        euid: 7005,
        egid: 100,
        auid: Some(4_294_967_295),
        ses: Some(3),
        comm: "käse\\x80".into(),
        exe: Some("/usr/bin/naïve".into()),
        mntns: Some(4_026_531_832),
        chrooted: Some(true),
        root: "/srv/jail".into(),
        syscall: 257,
        ret: -2,
        error: Some("ENOENT".into()),
        filename: Some(String::new()),
        cwd: Some("/".into()),
        argv: Some(r#"["a","b c","\u0001"]"#.into()),
        argv_truncated: Some(false),
        argc: Some(3),
        path: Some("/tmp/a'b".into()),
        host_path: Some("/srv/jail/tmp/a'b".into()),
        name: Some("a'b".into()),
        flags: Some(i64::MIN),
        flags_names: Some("O_RDONLY|O_CLOEXEC".into()),
        mode: Some(0o644),
        base_unknown: Some(false),
        via: Some("journald".into()),
        data: Some("line\nnext".into()),
        data_truncated: Some(true),
        family: Some("inet6".into()),
        fd: Some(-1),
        address: Some("::1".into()),
        port: Some(65535),
        ..base.clone()
    };
    // Two lanes' worth of full rows and of rows that are NULL wherever they may be, and
    // full rows again that only the replay below brings.
    let mut batch: Vec<_> = (10..14).map(full).collect();
    batch.extend((20..24).map(|seq| tracer_store::Row { seq, time_ns: base.time_ns + seq, ..base.clone() }));
    batch.extend((30..34).map(full));
    let lanes: std::collections::BTreeSet<_> = batch.iter().map(|r| tracer_store::pg::lanes::lane_of(r.seq)).collect();
    assert!(lanes.len() > 1, "the batch crosses lanes");
    assert_eq!(db.insert(&batch[..6]).unwrap().new, 6);
    // The replay path: a batch that holds stored rows goes through the temp table.
    assert_eq!(db.insert(&batch).unwrap().new, 6);
    let out = pg.psql(
        "events",
        "SELECT row_to_json(e)::text, (extract(epoch FROM e.time) * 1000000)::bigint FROM events e \
         WHERE machine_id = 'cols-host' ORDER BY seq",
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), batch.len(), "{out}");
    for (line, want) in got.iter().zip(&batch) {
        let (json, micros) = line.rsplit_once('|').unwrap();
        let mut json: serde_json::Value = serde_json::from_str(json).unwrap();
        json.as_object_mut().unwrap().remove("time");
        assert_eq!(json, serde_json::to_value(want).unwrap(), "seq {}", want.seq);
        assert_eq!(micros.parse::<i64>().unwrap(), want.time_ns.div_euclid(1000), "seq {}", want.seq);
    }
}

/// A row the server refuses for its data (here a NUL in a text, which PostgreSQL's text
/// cannot hold; the tracer's own rows escape it) is left out and counted; the rest of its
/// batch, a replay of it and the batches after it are stored: it never holds them back (it
/// used to be retried, with every batch behind it, until the spool was full).
#[test]
fn a_row_the_server_refuses_is_counted_and_holds_nothing_back() {
    let pg = Postgres::start();
    let (mut db, rows) = writer_and_rows(&pg, 0);
    let mut batch = rows("refuse", 1, 201);
    batch[57].comm = "a\0b".into();
    batch[140].data = Some("x\0".into());
    let done = db.insert(&batch).unwrap();
    assert_eq!((done.new, done.refused), (198, 2), "{done:?}");
    assert!(done.reason.as_deref().unwrap_or("").contains("0x00"), "{done:?}");
    let again = db.insert(&batch).unwrap();
    assert_eq!((again.new, again.refused), (0, 2), "a replay: nothing new, the same two refused");
    let count = |sql: &str| -> u64 { pg.psql("events", sql).parse().unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE machine_id = 'refuse-host'"), 198);
    // Through the writer: counted as dropped, said why, and the rows after it land.
    let dir = TempDir::new("pgrefuse");
    let url = pg.url_with_password();
    let mut w = tracer_store::writer::Writer::start(tracer_store::writer::Options {
        target: tracer_store::Target::Postgres(url),
        retention_days: 0,
        spool_dir: dir.file("spool"),
        spool_bytes: 1 << 20,
        on_full: tracer_store::spool::OnFull::Block,
        key: None,
    })
    .unwrap();
    for (i, mut r) in rows("ignored", 0, 300).into_iter().enumerate() {
        r.comm = if i == 10 { "bad\0".into() } else { "writer-rows".into() };
        w.push(r).unwrap();
        if i == 100 {
            w.flush().unwrap();
        }
    }
    let sum = w.close().unwrap();
    assert_eq!((sum.stored, sum.spooled, sum.dropped, sum.refused), (299, 0, 1, 1), "{sum}");
    assert!(sum.to_string().contains("1 dropped (0 spool full, 1 refused by the database)"), "{sum}");
    assert_eq!(count("SELECT COUNT(*) FROM events WHERE comm = 'writer-rows'"), 299);
}

/// A long reader of `events` (a fleet-wide report's transaction) never stalls the writers.
/// Tomorrow's partition is made with today's, so midnight takes no lock on `events`. A day
/// that must be made meanwhile needs `events` to itself: its maker gives the lock up after a
/// while and keeps the batch, instead of waiting with every other writer's rows queued
/// behind its request; the rows land once the reader is done.
#[test]
fn a_long_report_never_stalls_the_writers() {
    use std::time::{Duration, Instant};
    let pg = Postgres::start();
    let (mut maker, rows) = writer_and_rows(&pg, 0);
    let (mut other, _) = writer_and_rows(&pg, 0);
    assert_eq!(maker.insert(&rows("maker", 1, 11)).unwrap().new, 10);
    let tomorrow = "'events_' || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')";
    assert_eq!(pg.psql("events", &format!("SELECT to_regclass({tomorrow}) IS NOT NULL")), "t", "made ahead");
    let mut report = tracer_store::pg::client(&pg.url_with_password()).unwrap();
    report.batch_execute("BEGIN; SELECT COUNT(*) FROM events").unwrap();
    // A week ahead: a day no one made.
    const WEEK: i64 = 7 * 86_400_000_000_000;
    let later: Vec<_> =
        rows("maker", 11, 21).into_iter().map(|r| tracer_store::Row { time_ns: r.time_ns + WEEK, ..r }).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let making = std::thread::spawn(move || {
        let t = Instant::now();
        let r = maker.send(later);
        tx.send(t.elapsed()).unwrap();
        (maker, r)
    });
    std::thread::sleep(Duration::from_millis(500));
    // Another host's rows for today, while the maker waits for its lock.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let today = rows("other", 1, 11);
    let storing = std::thread::spawn(move || {
        let t = Instant::now();
        let r = other.insert(&today).map(|i| i.new).map_err(|p| p.error.to_string());
        done_tx.send(()).unwrap();
        (r, t.elapsed())
    });
    let stalled = done_rx.recv_timeout(Duration::from_secs(15)).is_err();
    assert!(!stalled, "another writer's rows stalled behind the wait for a new day's lock");
    let (stored, took) = storing.join().unwrap();
    assert_eq!(stored, Ok(10));
    let waited = rx.recv_timeout(Duration::from_secs(15)).expect("the maker gave up its wait");
    eprintln!("maker gave up after {waited:?}; the other writer stored in {took:?}");
    let (mut maker, r) = making.join().unwrap();
    let kept = r.expect_err("the new day could not be made").pending;
    assert_eq!(kept.len(), 10, "the batch is kept whole");
    report.batch_execute("COMMIT").unwrap();
    assert_eq!(maker.insert(&kept).unwrap().new, 10, "and lands once the reader is done");
    assert_eq!(pg.psql("events", "SELECT COUNT(*) FROM events"), "30");
}
