//! A database server cut off by the network (every packet to it dropped: a partition, a host
//! that died) says nothing: no reset, no close. The writer gives its connections up within
//! its own timeouts, not the system's (about 15 minutes of retransmissions for data never
//! acknowledged, two hours of silence before a keepalive), spools what it could not store,
//! and replays it once the server is reachable again. A real PostgreSQL 15 in a network
//! namespace of its own, the writer in another joined to it by a veth pair, and the cut made
//! by nftables in the server's namespace: the host's own firewall is never touched.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::time::{Duration, Instant};

use tracer_store::{
    Row, Target,
    spool::OnFull,
    writer::{Options, Stats, Writer},
};
use tracer_tests::{
    TempDir,
    netns::Netns,
    pg::{self, Postgres},
};

/// Waits up to WITHIN for WHAT to hold; how long it took.
fn wait(what: &str, within: Duration, ok: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

/// Every packet into and out of NS dropped (its sockets with a path still work).
fn cut(ns: &Netns) {
    ns.exec(&["nft", "add table inet cut"]);
    ns.exec(&["nft", "add chain inet cut in { type filter hook input priority 0 ; policy drop ; }"]);
    ns.exec(&["nft", "add chain inet cut out { type filter hook output priority 0 ; policy drop ; }"]);
}

fn heal(ns: &Netns) {
    ns.exec(&["nft", "delete table inet cut"]);
}

fn push(w: &mut Writer, n: usize) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    for i in 0..n {
        let r = Row {
            event: "exec".into(),
            time_ns: now + i as i64,
            comm: "cut".into(),
            root: "/".into(),
            ..Row::default()
        };
        w.push(r).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn a_server_cut_off_by_the_network_is_given_up_and_nothing_is_lost() {
    let (srv, cli) = (Netns::new("pgsrv"), Netns::new("pgcli"));
    srv.veth(&cli, &["10.77.0.1/24"], &["10.77.0.2/24"]);
    let pg = Postgres::start_in(&srv, "10.77.0.1");
    let dir = TempDir::new("pgcut");
    let opts = Options {
        target: Target::Postgres(pg.url_with_password()),
        retention_days: 0,
        spool_dir: dir.file("spool"),
        spool_bytes: 1 << 20,
        on_full: OnFull::Block,
        key: Some("cut".into()),
    };
    // Threads inherit the namespace of the thread that makes them: the writer's and its
    // lanes' stay in the client's.
    let mut w = cli.run_in(move || Writer::start(opts)).unwrap();
    let stats = w.stats();
    let n = |s: &Stats| {
        use std::sync::atomic::Ordering::Relaxed;
        (s.stored.load(Relaxed), s.spooled.load(Relaxed), s.dropped.load(Relaxed))
    };

    push(&mut w, 100);
    wait("the first rows stored", Duration::from_secs(10), || n(&stats).0 == 100);

    cut(&srv);
    push(&mut w, 100);
    let noticed = wait("the cut noticed and the rows spooled", Duration::from_secs(90), || n(&stats).1 == 100);
    eprintln!("cut off: noticed and spooled after {noticed:?}");
    // Its own limit (20 s for data never acknowledged), not the system's quarter of an hour.
    assert!(noticed < Duration::from_secs(45), "noticed after {noticed:?}");
    assert_eq!(n(&stats), (100, 100, 0), "nothing stored, nothing dropped while cut off");

    heal(&srv);
    wait("the spool replayed", Duration::from_secs(30), || n(&stats) == (200, 0, 0));
    let sum = w.close().unwrap();
    assert_eq!((sum.stored, sum.spooled, sum.dropped), (200, 0, 0), "{sum}");
    assert_eq!(pg.psql("events", "SELECT COUNT(*) FROM events WHERE key = 'cut'"), "200");
    assert_eq!(pg.psql("events", "SELECT COUNT(DISTINCT seq) FROM events WHERE key = 'cut'"), "200", "each once");
}

/// A guard's fleet link that only listens sends nothing, so only a keepalive can find it cut
/// off: without one, neither end notices a silent partition (the server keeps the system's
/// two hours too), and once the server's retransmissions give up (about 15 minutes) the link
/// listens on a connection that will never carry a word again.
/// Guard A is cut off longer than its keepalive limits while guard B bans over the socket:
/// A gives its connection up, reconnects once the network is back (a new backend serves it),
/// and applies B's ban from the table.
#[test]
fn a_fleet_link_cut_off_while_listening_reconnects_and_hears_the_bans() {
    let (srv, cli) = (Netns::new("bansrv"), Netns::new("bancli"));
    srv.veth(&cli, &["10.78.0.1/24"], &["10.78.0.2/24"]);
    let pg = Postgres::start_in(&srv, "10.78.0.1");
    let host = |name: &str| tracer_store::Host { hostname: name.into(), machine_id: format!("{name}-id") };
    let over_tcp = pg.url_with_password();
    let (tx, heard) = std::sync::mpsc::channel();
    let a_host = host("guard-a");
    let (_a, _) = cli
        .run_in(move || {
            tracer_store::bansync::BanSync::start(&over_tcp, "sshd", a_host, 0, move |b| {
                let _ = tx.send(b);
            })
        })
        .unwrap();
    let sock = pg.sock().display().to_string().replace('/', "%2F");
    let over_socket = format!("postgresql://{}:{}@{sock}:{}/events", pg::USER, pg::PASSWORD, pg.port);
    let (b, _) = tracer_store::bansync::BanSync::start(&over_socket, "sshd", host("guard-b"), 0, |_| {}).unwrap();
    let a_backend =
        || pg.psql("events", "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE client_addr = '10.78.0.2'");
    let before = a_backend();
    assert!(!before.is_empty(), "guard A is connected over TCP");

    cut(&srv);
    let t = Instant::now();
    b.ban("192.0.2.9", None);
    // Longer than 10 s of silence and three probes 5 s apart.
    std::thread::sleep(Duration::from_secs(32));
    assert!(heard.try_recv().is_err(), "nothing reaches guard A while it is cut off");
    heal(&srv);
    let got = heard.recv_timeout(Duration::from_secs(30)).expect("guard A heard of the ban");
    eprintln!("guard A reconnected and heard of the ban {:?} after the cut", t.elapsed());
    assert_eq!((got.op.as_str(), got.ip.as_str(), got.hostname.as_str()), ("ban", "192.0.2.9", "guard-b"));
    let after = a_backend();
    // The old backend may linger: the server gives it up by its own keepalive settings.
    assert!(
        after.split(',').any(|p| !before.split(',').any(|q| q == p)),
        "a new backend serves guard A: {before} -> {after}"
    );
}

/// A server that answers nothing (every packet dropped) fails a connection after the
/// tracer's own 5 s, or after the URL's `connect_timeout` when it gives one (it used to be
/// overridden).
#[test]
fn a_connection_to_a_silent_server_gives_up_at_the_urls_connect_timeout() {
    let (srv, cli) = (Netns::new("pgsil"), Netns::new("pgsilc"));
    srv.veth(&cli, &["10.79.0.1/24"], &["10.79.0.2/24"]);
    cut(&srv);
    let url = format!("postgresql://{}:{}@10.79.0.1:5432/events", pg::USER, pg::PASSWORD);
    let attempt = |url: String| {
        cli.run_in(move || {
            let t = Instant::now();
            let r = tracer_store::pg::client(&url);
            (r.err().map(|e| e.to_string()), t.elapsed())
        })
    };
    let (err, took) = attempt(format!("{url}?connect_timeout=1"));
    assert!(err.is_some() && took < Duration::from_secs(3), "{took:?} {err:?}");
    let (err, took) = attempt(url);
    assert!(err.is_some() && took >= Duration::from_millis(4500) && took < Duration::from_secs(10), "{took:?} {err:?}");
    assert!(!err.unwrap().contains(pg::PASSWORD));
}
