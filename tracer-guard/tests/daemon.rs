//! The daemon's guarantees against the real nftables, in network namespaces made here: long
//! bans stay in the set, firewall failures lose nothing and heal, a corrupt state does not
//! stop the jail, reload keeps bans, and concurrent bans without a daemon make one.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod common;

use std::net::IpAddr;

use common::{GuardNetns, Netns, TempDir};
use tracer_guard::config::parse_str;
use tracer_guard::nft::{MAX_TIMEOUT, NftElement, NftFirewall};
use tracer_guard::offline::ban_via_state;
use tracer_guard::ports::PortSpec;
use tracer_guard::state::State;
use tracer_guard::{Event, Guard, GuardOptions, JailConfig, Level, Offline, now};

fn cfg(text: &str) -> JailConfig {
    parse_str(&format!("[sshd]\nenabled = true\nignoreself = false\n{text}"), "jail.local").unwrap().jail
}

fn opts(ns: &Netns, dir: &TempDir) -> GuardOptions {
    GuardOptions { state_path: dir.path().join("guard.sqlite3"), runner: ns.runner(), ..Default::default() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn element(ns: &Netns, a: IpAddr) -> Option<NftElement> {
    NftFirewall::new(ns.runner(), "tracer_guard", "sshd", PortSpec::ssh())
        .elements()
        .unwrap()
        .into_iter()
        .find(|e| e.ip == a)
}

#[test]
fn bans_longer_than_nft_timeouts_stay_in_the_set() {
    let ns = Netns::new("long");
    let dir = TempDir::new("long");
    let t = now();
    // 10 years: nft takes at most 99 999 999 s; the element carries that and the daemon refreshes it.
    let (mut g, _) = Guard::start(&cfg("bantime = 10y\n"), opts(&ns, &dir), t).unwrap();
    let e = g.ban(ip("192.0.2.10"), t).unwrap();
    assert!(matches!(e, Event::Ban { bantime: 315_576_000, .. }), "{e:?}");
    let el = element(&ns, ip("192.0.2.10")).expect("10y ban in the set");
    assert_eq!(el.timeout, Some(MAX_TIMEOUT));
    assert!(g.is_enforced(&ip("192.0.2.10")));
    assert!(g.status().firewall_errors.is_empty(), "{:?}", g.status());
    drop(g); // as if killed: the next start restores it (the old code refused: "value too large")
    let (mut g, restored) = Guard::start(&cfg("bantime = 10y\n"), opts(&ns, &dir), t + 5).unwrap();
    assert_eq!(restored.len(), 1);
    assert_eq!(element(&ns, ip("192.0.2.10")).unwrap().timeout, Some(MAX_TIMEOUT));
    // The element lapses after 99 999 999 s; the daemon puts it back in time. (Here it is
    // deleted by hand, and ticks are given future times.)
    ns.exec(&["nft", "delete", "element", "inet", "tracer_guard", "sshd_v4", "{ 192.0.2.10 }"]);
    g.tick(t + 10).unwrap();
    assert!(element(&ns, ip("192.0.2.10")).is_none(), "no refresh years ahead of time");
    g.tick(t + 5 + MAX_TIMEOUT as i64 - 86400).unwrap();
    assert_eq!(element(&ns, ip("192.0.2.10")).expect("refreshed").timeout, Some(MAX_TIMEOUT));
    assert!(g.jail().is_banned(&ip("192.0.2.10")));
    g.stop(t + 5).unwrap();

    // bantime.increment past 3 years: the 12th ban of 1d lasts 2048 days.
    let dir = TempDir::new("incr");
    let c = cfg("bantime = 1d\nbantime.increment = true\n");
    let (mut g, _) = Guard::start(&c, opts(&ns, &dir), t).unwrap();
    let a = ip("198.51.100.12");
    for _ in 0..11 {
        g.ban(a, t).unwrap();
        g.unban(a, t).unwrap();
    }
    let e = g.ban(a, t).unwrap();
    assert!(matches!(e, Event::Ban { count: 12, bantime: 176_947_200, .. }), "{e:?}");
    assert_eq!(element(&ns, a).expect("incremented ban in the set").timeout, Some(MAX_TIMEOUT));
    // Permanent: an element without timeout.
    g.reload(&cfg("bantime = -1\n"), t).unwrap();
    g.ban(ip("198.51.100.13"), t).unwrap();
    assert_eq!(element(&ns, ip("198.51.100.13")).unwrap().timeout, None);
    g.stop(t).unwrap();
}

#[test]
fn iptables_holds_a_ten_year_ban_until_the_daemon_lifts_it() {
    let ns = Netns::new("iptlong");
    let dir = TempDir::new("iptlong");
    let c = cfg("bantime = 10y\nbanaction = iptables-multiport\n");
    let t = now();
    let (mut g, _) = Guard::start(&c, opts(&ns, &dir), t).unwrap();
    g.ban(ip("192.0.2.11"), t).unwrap();
    let rules = || ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]);
    assert!(rules().contains("-A f2b-sshd -s 192.0.2.11/32 -j REJECT"), "{}", rules());
    assert!(g.status().firewall_errors.is_empty());
    drop(g);
    let (mut g, restored) = Guard::start(&c, opts(&ns, &dir), t + 5).unwrap();
    assert_eq!(restored.len(), 1);
    assert!(rules().contains("-s 192.0.2.11/32"), "{}", rules());
    // Nine years later it still holds; after ten years and a day the tick lifts it.
    let year = 31_557_600;
    assert!(g.tick(t + 9 * year).unwrap().is_empty());
    assert!(rules().contains("-s 192.0.2.11/32"), "{}", rules());
    assert_eq!(g.tick(t + 10 * year + 86400).unwrap(), vec![Event::Unban { ip: ip("192.0.2.11") }]);
    assert!(!rules().contains("192.0.2.11"), "{}", rules());
    g.stop(t).unwrap();
}

#[test]
fn a_firewall_failure_loses_no_ban_is_shown_and_heals() {
    let ns = Netns::new("fwfail");
    let dir = TempDir::new("fwfail");
    let t = now();
    let (mut g, _) = Guard::start(&cfg("bantime = 1h\n"), opts(&ns, &dir), t).unwrap();
    ns.exec(&["nft", "delete", "table", "inet", "tracer_guard"]);
    let a = ip("192.0.2.20");
    let e = g.ban(a, t).unwrap();
    assert!(matches!(e, Event::Ban { .. }), "the event survives: {e:?}");
    assert!(!g.is_enforced(&a));
    let st = g.status();
    assert_eq!(st.banned, vec![a]);
    assert_eq!(st.firewall_errors.len(), 1, "{st:?}");
    assert!(st.firewall_errors[0].starts_with("ban of 192.0.2.20 not enforced: "), "{st:?}");
    assert!(st.to_string().contains("Firewall errors:\t1\n  ban of 192.0.2.20 not enforced"), "{st}");
    let log = g.take_log();
    assert!(
        log.iter().any(|l| l.level == Level::Error && l.text.contains("does not hold the ban of 192.0.2.20")),
        "{log:?}"
    );
    // The next tick puts the table back with the ban.
    g.tick(t + 1).unwrap();
    assert!(element(&ns, a).is_some(), "{}", ns.exec(&["nft", "list", "ruleset"]));
    assert!(g.is_enforced(&a));
    assert!(g.status().firewall_errors.is_empty());
    g.stop(t + 1).unwrap();
}

#[test]
fn a_corrupt_state_is_moved_aside_and_the_jail_starts() {
    let ns = Netns::new("corrupt");
    let dir = TempDir::new("corrupt");
    let o = opts(&ns, &dir);
    std::fs::write(&o.state_path, vec![0x5a; 8192]).unwrap();
    let t = now();
    let (mut g, restored) = Guard::start(&cfg(""), o.clone(), t).unwrap();
    assert!(restored.is_empty());
    let log = g.take_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].level, Level::Warning);
    assert!(log[0].text.contains("moved aside to") && log[0].text.contains("empty state"), "{log:?}");
    let aside = format!("{}.corrupt-{t}", o.state_path.display());
    assert_eq!(std::fs::read(&aside).unwrap(), vec![0x5a; 8192], "the old file is kept");
    g.ban(ip("192.0.2.30"), t).unwrap();
    g.stop(t).unwrap();
    assert_eq!(State::open(&o.state_path).unwrap().active_bans("sshd", t).unwrap().len(), 1);
}

#[test]
fn reload_keeps_bans_and_rebuilds_the_firewall_for_new_ports() {
    let ns = Netns::new("reload");
    let dir = TempDir::new("reload");
    let t = now();
    let (mut g, _) = Guard::start(&cfg("bantime = 1h\n"), opts(&ns, &dir), t).unwrap();
    g.ban(ip("192.0.2.40"), t).unwrap();
    g.reload(&cfg("bantime = 2h\nmaxretry = 2\nport = 2222\n"), t).unwrap();
    assert_eq!(g.jail().settings.maxretry, 2);
    assert!(g.jail().is_banned(&ip("192.0.2.40")));
    let rules = ns.exec(&["nft", "list", "table", "inet", "tracer_guard"]);
    assert!(rules.contains("tcp dport 2222 ip saddr @sshd_v4 reject"), "{rules}");
    assert!(element(&ns, ip("192.0.2.40")).is_some(), "ban kept across the rebuild: {rules}");
    assert!(matches!(g.ban(ip("192.0.2.41"), t).unwrap(), Event::Ban { bantime: 7200, .. }));
    // Another banaction: the old objects go, the new ones hold every ban.
    g.reload(&cfg("bantime = 2h\nbanaction = iptables-multiport\n"), t).unwrap();
    assert!(ns.try_exec(&["nft", "list", "table", "inet", "tracer_guard"]).is_err(), "nft table removed");
    let chain = ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]);
    assert!(chain.contains("-s 192.0.2.40/32") && chain.contains("-s 192.0.2.41/32"), "{chain}");
    assert!(g.status().firewall_errors.is_empty());
    g.stop(t).unwrap();
    assert!(ns.try_exec(&["iptables", "-w", "-S", "f2b-sshd"]).is_err(), "chain removed on stop");
}

#[test]
fn concurrent_bans_without_a_daemon_make_one_ban() {
    let ns = Netns::new("conc");
    let dir = TempDir::new("conc");
    let c = cfg("bantime = 1h\n");
    let o = opts(&ns, &dir);
    let t = now();
    // No firewall objects: refused, nothing recorded.
    assert!(matches!(ban_via_state(&c, &o, ip("192.0.2.50"), t).unwrap(), Offline::NoFirewall { .. }));
    assert_eq!(State::open(&o.state_path).unwrap().ban_rows("sshd", ip("192.0.2.50")).unwrap(), 0);
    // Objects left by a daemon stopped with --keep-bans: applied directly, once.
    let (g, _) = Guard::start(&c, GuardOptions { keep_bans: true, ..o.clone() }, t).unwrap();
    g.stop(t).unwrap();
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (c, o) = (c.clone(), o.clone());
            std::thread::spawn(move || ban_via_state(&c, &o, ip("192.0.2.50"), t).unwrap())
        })
        .collect();
    let results: Vec<Offline> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| matches!(r, Offline::Applied { .. })).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| matches!(r, Offline::Already(_))).count(), 9, "{results:?}");
    assert_eq!(State::open(&o.state_path).unwrap().ban_rows("sshd", ip("192.0.2.50")).unwrap(), 1);
    assert!(element(&ns, ip("192.0.2.50")).is_some());
}

#[test]
fn a_ban_the_database_refuses_is_kept_enforced_and_recorded_later() {
    let ns = Netns::new("dbbusy");
    let dir = TempDir::new("dbbusy");
    let o = opts(&ns, &dir);
    let t = now();
    let (mut g, _) = Guard::start(&cfg("bantime = 1h\n"), o.clone(), t).unwrap();
    // Another writer holds the database (SQLite gives up after its 5 s busy timeout).
    let other = rusqlite::Connection::open(&o.state_path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let a = ip("192.0.2.60");
    let e = g.ban(a, t).unwrap();
    assert!(matches!(e, Event::Ban { .. }), "{e:?}");
    assert!(g.jail().is_banned(&a) && g.is_enforced(&a), "the ban holds anyway");
    assert!(element(&ns, a).is_some());
    let log = g.take_log();
    assert!(log.iter().any(|l| l.text.contains("cannot record the ban of 192.0.2.60")), "{log:?}");
    other.execute_batch("COMMIT").unwrap();
    // The next tick records it, and does not take the missing row for an unban.
    let ev = g.tick(t + 1).unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    assert!(g.jail().is_banned(&a) && element(&ns, a).is_some());
    assert_eq!(State::open(&o.state_path).unwrap().ban_rows("sshd", a).unwrap(), 1);
    g.stop(t + 1).unwrap();
}

#[test]
fn a_stored_ban_the_firewall_refuses_does_not_stop_the_start() {
    let ns = Netns::new("refuse");
    let dir = TempDir::new("refuse");
    let c = cfg("bantime = 1h\n");
    let t = now();
    let (mut g, _) = Guard::start(&c, opts(&ns, &dir), t).unwrap();
    g.ban(ip("192.0.2.65"), t).unwrap();
    g.ban(ip("192.0.2.66"), t).unwrap();
    drop(g);
    // The real nft, except that it refuses any script naming 192.0.2.66 (nothing else makes
    // nft refuse one address on demand).
    let wrapper = dir.path().join("nft-refusing");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nin=$(cat)\ncase \"$in\" in *192.0.2.66*) echo 'Error: refused for the test' >&2; exit 1;; esac\n\
             printf '%s' \"$in\" | exec ip netns exec {} \"$@\"\n",
            ns.name
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = GuardOptions {
        runner: tracer_guard::CommandRunner::with_prefix(vec![wrapper.display().to_string()]),
        ..opts(&ns, &dir)
    };
    let (mut g, restored) = Guard::start(&c, o, t + 1).unwrap();
    assert_eq!(restored.len(), 2, "both restored in the jail");
    assert!(element(&ns, ip("192.0.2.65")).is_some(), "the other ban is enforced");
    assert!(element(&ns, ip("192.0.2.66")).is_none());
    assert!(!g.is_enforced(&ip("192.0.2.66")));
    let st = g.status();
    assert_eq!(st.firewall_errors.len(), 1, "{st:?}");
    assert!(
        st.firewall_errors[0].contains("192.0.2.66") && st.firewall_errors[0].contains("refused for the test"),
        "{st:?}"
    );
    let log = g.take_log();
    assert!(log.iter().any(|l| l.text.contains("adding them one by one")), "{log:?}");
    g.stop(t + 1).unwrap();
}
