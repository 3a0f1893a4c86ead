//! Fleet bans (`bansync = postgresql://…` in jail.local's `[DEFAULT]`): three guards in
//! three network namespaces, each with its own nftables, sharing one real PostgreSQL. A ban
//! made on one is in the others' nftables within 1 s (measured and printed), an unban
//! propagates, a guard started later applies the bans in force, and each guard honours its
//! own `ignoreip`. The jails read log files the test writes (`--source file`).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod guard_env;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use guard_env::*;
use tracer_tests::pg::Postgres;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Host {
    ns: Netns,
    dir: TempDir,
    jail: PathBuf,
    log: PathBuf,
}

impl Host {
    fn new(tag: &str, url: &str, extra: &str) -> Host {
        let ns = Netns::new(tag);
        let dir = TempDir::new(tag);
        let log = dir.file("auth.log");
        std::fs::write(&log, "").unwrap();
        let jail = dir.file("jail.local");
        std::fs::write(
            &jail,
            format!(
                "[DEFAULT]\nbansync = {url}\n\n[sshd]\nenabled = true\nignoreself = false\nmaxretry = 3\nbantime = 1h\nlogpath = {}\n{extra}",
                log.display()
            ),
        )
        .unwrap();
        Host { ns, dir, jail, log }
    }

    fn start(&self) -> GuardProc {
        let state = self.dir.file("state.sqlite3");
        GuardProc::start(&self.ns, &self.dir, &["--source", "file", "--config", s(&self.jail), "--state", s(&state)])
    }

    fn fail(&self, ip: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        for i in 0..3 {
            writeln!(f, "Nov 27 13:22:29 host sshd[{}]: Failed password for root from {ip} port 5{i} ssh2", 4000 + i)
                .unwrap();
        }
    }

    fn holds(&self, ip: &str) -> bool {
        self.ns.try_exec(&["nft", "list", "set", "inet", "tracer_guard", "sshd_v4"]).unwrap_or_default().contains(ip)
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let state = self.dir.file("state.sqlite3");
        let mut a = args.to_vec();
        a.extend(["--config", s(&self.jail), "--state", s(&state)]);
        guard_cmd(Some(&self.ns), &a)
    }
}

/// How long until `pred` holds (None: not within 5 s).
fn until(pred: impl Fn() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if pred() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn a_ban_on_one_guard_is_enforced_by_the_others_within_a_second() {
    let pg = Postgres::start();
    // The guards live in other network namespaces: they reach the database by its socket.
    let url = format!(
        "postgresql://{}@{}:{}/events",
        tracer_tests::pg::USER,
        pg.sock().display().to_string().replace('/', "%2F"),
        pg.port
    );
    let net = subnet(147);
    let (x, y) = (net(7), net(8));
    let a = Host::new("fleeta", &url, "");
    let b = Host::new("fleetb", &url, "");
    let c = Host::new("fleetc", &url, &format!("ignoreip = {y}\n"));
    let ga = a.start();
    let gb = b.start();

    // A sees three failures from X and bans it; B enforces it too.
    a.fail(&x);
    until(|| a.holds(&x)).expect("A bans X");
    let lat_b = until(|| b.holds(&x)).unwrap_or_else(|| panic!("B never enforced X:\n{}", gb.output()));
    // C was down: it applies the ban in force when it starts.
    let gc = c.start();
    until(|| c.holds(&x)).unwrap_or_else(|| panic!("C did not apply the fleet's ban at start:\n{}", gc.output()));

    // Y is exempt on C only.
    a.fail(&y);
    until(|| a.holds(&y)).expect("A bans Y");
    let lat_y = until(|| b.holds(&y)).expect("B enforces Y");
    assert!(
        gc.wait(|l| l.contains(&format!("fleet ban of {y}")) && l.contains("not applied"), Duration::from_secs(5)),
        "{}",
        gc.output()
    );
    assert!(!c.holds(&y), "C's own ignoreip wins");

    // Status on B says which bans came from the fleet.
    let (code, out, err) = b.cli(&["status", "sshd"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("From the fleet:") && out.contains(&x) && out.contains(&y), "{out}");
    let (_, out_a, _) = a.cli(&["status", "sshd"]);
    assert!(!out_a.contains("From the fleet:"), "A made its bans itself: {out_a}");

    // An unban on B lifts X on A and C.
    let (code, _, err) = b.cli(&["unban", "sshd", &x]);
    assert_eq!(code, 0, "{err}");
    let lat_ua = until(|| !a.holds(&x)).unwrap_or_else(|| panic!("A kept X:\n{}", ga.output()));
    let lat_uc = until(|| !c.holds(&x)).expect("C lifts X");
    println!(
        "fleet propagation: ban A->B {lat_b:?}, ban A->B (2nd) {lat_y:?}, unban B->A {lat_ua:?}, unban B->C {lat_uc:?}"
    );
    for (what, d) in [("ban", lat_b), ("ban", lat_y), ("unban", lat_ua), ("unban", lat_uc)] {
        assert!(d < Duration::from_secs(1), "{what} took {d:?}");
    }
    drop((ga, gb, gc));
}

#[test]
fn an_unreachable_bansync_database_stops_the_guard_before_the_firewall() {
    let h = Host::new("fleetbad", "postgresql://tracer@%2Fnonexistent%2Fpg:5432/events", "");
    let state = h.dir.file("state.sqlite3");
    let (code, _, err) =
        guard_cmd(Some(&h.ns), &["run", "--source", "file", "--config", s(&h.jail), "--state", s(&state)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bansync") && err.contains("nonexistent"), "{err}");
    assert!(h.ns.try_exec(&["nft", "list", "table", "inet", "tracer_guard"]).is_err(), "firewall untouched");
    let bad = Host::new("fleetbad2", "mysql://x@h/db", "");
    let (code, _, err) =
        guard_cmd(Some(&bad.ns), &["run", "--source", "file", "--config", s(&bad.jail), "--state", s(&state)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bansync"), "{err}");
}
