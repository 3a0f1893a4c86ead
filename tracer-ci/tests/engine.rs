//! The engine without the kernel: a job's events in, summary, policy, baseline and both
//! renderings out.

use std::net::SocketAddr;

// The library's own dependencies, not used here directly.
use {glob as _, ipnet as _, serde as _, simple_dns as _, thiserror as _, toml as _};

use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};
use tracer_ci::{
    Baseline, ConnectResult, Context, Event, FsOp, Job, Peer, Policy, What,
    event::{O_CREAT, O_EXCL, O_TRUNC, O_WRONLY},
    render,
};

const WS: &[u8] = b"/work/ws";
const HOME: &[u8] = b"/home/ci";

fn ev(t: u64, pid: u32, ppid: u32, what: What) -> Event {
    Event { time_ns: t * 1_000_000, pid, ppid: Some(ppid), comm: b"x".to_vec(), what }
}

fn exec(t: u64, pid: u32, ppid: u32, argv: &[&str]) -> Event {
    let filename = format!("/usr/bin/{}", argv[0]).into_bytes();
    ev(t, pid, ppid, What::Exec { filename, argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(), ok: true })
}

fn exit(t: u64, pid: u32, ppid: u32, status: Option<i32>, signal: Option<i32>) -> Event {
    ev(t, pid, ppid, What::Exit { status, signal })
}

fn open(t: u64, pid: u32, path: &str, flags: u32) -> Event {
    ev(t, pid, 100, What::Open { path: path.as_bytes().to_vec(), flags, error: None })
}

fn connect(t: u64, pid: u32, to: &str, result: ConnectResult) -> Event {
    ev(t, pid, 100, What::Connect { peer: Peer::Inet(to.parse::<SocketAddr>().unwrap()), result })
}

/// A DNS query for `name`, or its response with one A record.
fn dns(name: &[&[u8]], answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut m =
        vec![0x12, 0x34, if answer.is_some() { 0x81 } else { 1 }, 0, 0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0];
    for l in name {
        m.push(l.len() as u8);
        m.extend_from_slice(l);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(ip) = answer {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&ip);
    }
    m
}

fn outcome(t: u64, pid: u32, to: &str, result: ConnectResult) -> Event {
    ev(t, pid, 100, What::ConnectOutcome { peer: to.parse::<SocketAddr>().unwrap(), result })
}

/// sh job.sh (100) → cc (101), python3 (102) → curl (103, killed)
fn job() -> Job {
    let mut ctx = Context::new(WS.to_vec(), HOME.to_vec());
    ctx.outcomes = true;
    let mut j = Job::new(ctx);
    for e in [
        exec(0, 100, 1, &["sh", "job.sh"]),
        exec(10, 101, 100, &["cc", "-c", "a.c", "-o", "out/a.o"]),
        open(20, 101, "/work/ws/out/a.o", O_WRONLY | O_CREAT | O_TRUNC),
        open(21, 101, "/tmp/cc123.s", O_WRONLY | O_CREAT | O_EXCL),
        exit(30, 101, 100, Some(0), None),
        ev(31, 100, 1, What::Fs { op: FsOp::Delete, path: b"/tmp/cc123.s".to_vec(), to: None, error: None }),
        exec(40, 102, 100, &["python3", "x.py"]),
        open(41, 102, "/home/ci/.aws/credentials", 0),
        open(42, 102, "/work/ws/README", 0),
        // A failed attempt counts; another process's environment is a secret, its own is not.
        ev(42, 102, 100, What::Open { path: b"/home/ci/.ssh/id_rsa".to_vec(), flags: 0, error: Some("ENOENT".into()) }),
        open(42, 102, "/proc/1/environ", 0),
        open(42, 102, "/proc/102/environ", 0),
        open(42, 102, "/proc/self/environ", 0),
        outcome(43, 102, "10.7.0.1:8080", ConnectResult::Connected),
        connect(43, 102, "10.7.0.1:8080", ConnectResult::Connected),
        // No handshake: a UDP socket's connect.
        connect(43, 102, "10.7.0.1:53", ConnectResult::Connected),
        connect(44, 102, "10.99.0.1:443", ConnectResult::Failed("ECONNREFUSED".into())),
        connect(45, 102, "[fd00::1]:443", ConnectResult::InProgress),
        // Non-blocking connects settled later, and a blocking one whose outcome came first.
        connect(45, 102, "10.7.0.2:80", ConnectResult::InProgress),
        outcome(45, 102, "10.7.0.2:80", ConnectResult::Failed("ETIMEDOUT".into())),
        connect(45, 102, "10.7.0.3:80", ConnectResult::InProgress),
        outcome(45, 102, "10.7.0.3:80", ConnectResult::Connected),
        outcome(45, 102, "10.7.0.4:80", ConnectResult::Connected),
        connect(45, 102, "10.7.0.4:80", ConnectResult::Connected),
        ev(
            46,
            102,
            100,
            What::Connect { peer: Peer::Unix(b"\0abstract|x".to_vec()), result: ConnectResult::Connected },
        ),
        ev(42, 102, 100, What::Dns { message: dns(&[b"registry", b"test"], Some([10, 7, 0, 1])) }),
        ev(47, 102, 100, What::Dns { message: dns(&[b"evil\n| x |"], None) }),
        ev(47, 102, 100, What::Dns { message: b"\xff\xff garbage".to_vec() }),
        ev(48, 102, 100, What::Listen { local: "0.0.0.0:9999".parse().unwrap() }),
        exit(50, 102, 100, Some(1), None),
        exec(60, 103, 100, &["curl", "http://10.99.0.1/"]),
        exit(70, 103, 100, None, Some(15)),
        // A quiet fork: no line of its own.
        exit(71, 104, 100, Some(0), None),
        exit(80, 100, 1, Some(1), None),
    ] {
        j.add(&e);
    }
    j
}

#[test]
fn summary_holds_each_fact() {
    let s = job().summary();
    let cmds: Vec<_> = s.processes.iter().map(|p| (p.pid, p.depth, p.command(), p.outcome())).collect();
    assert_eq!(
        cmds,
        [
            (100, 0, "sh job.sh".into(), "exit 1".into()),
            (101, 1, "cc -c a.c -o out/a.o".into(), "exit 0".into()),
            (102, 1, "python3 x.py".into(), "exit 1".into()),
            (103, 1, "curl http://10.99.0.1/".into(), "SIGTERM".into()),
        ]
    );
    assert_eq!(s.processes[1].duration_ms, Some(20));
    assert!(s.processes[3].failed && !s.processes[1].failed);
    let files: Vec<_> = s.files.iter().map(|f| (f.display.as_str(), f.dir.as_str(), f.ops.join(","))).collect();
    assert_eq!(files, [("/tmp/cc123.s", "/tmp", "created,deleted".to_string()), ("out/a.o", "out", "written".into())]);
    let reads: Vec<_> =
        s.sensitive_reads.iter().map(|r| (r.display.as_str(), r.error.as_deref().unwrap_or("read"))).collect();
    assert_eq!(reads, [("~/.aws/credentials", "read"), ("~/.ssh/id_rsa", "ENOENT"), ("/proc/1/environ", "read")]);
    assert_eq!(s.sensitive_reads[0].chain, ["sh job.sh (100)", "python3 x.py (102)"]);
    let egress: Vec<_> = s.egress.iter().map(|d| (d.endpoint(), d.outcome.as_str())).collect();
    assert_eq!(
        egress,
        [
            ("10.7.0.1:53".to_string(), "udp"),
            ("10.7.0.1:8080".into(), "established"),
            ("10.7.0.2:80".into(), "failed (ETIMEDOUT)"),
            ("10.7.0.3:80".into(), "established"),
            ("10.7.0.4:80".into(), "established"),
            ("10.99.0.1:443".into(), "failed (ECONNREFUSED)"),
            ("[fd00::1]:443".into(), "in progress")
        ]
    );
    assert_eq!(s.unix_sockets[0].path, "@abstract|x");
    let listeners: Vec<_> = s.listeners.iter().map(|l| (l.address.as_str(), l.port, l.pids.clone())).collect();
    assert_eq!(listeners, [("0.0.0.0", 9999, vec![102])]);
    let names: Vec<_> = s.dns.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["evil\\x0a| x |", "registry.test"]);
    // The answer names the destinations at its address.
    let named: Vec<_> =
        s.egress.iter().filter(|d| !d.names.is_empty()).map(|d| (d.endpoint(), d.names.join(" "))).collect();
    assert_eq!(
        named,
        [("10.7.0.1:53".to_string(), "registry.test".to_string()), ("10.7.0.1:8080".into(), "registry.test".into())]
    );
}

#[test]
fn policy_lists_violations_with_chains() {
    let text = r#"
[egress]
cidrs = ["10.7.0.0/16", "fd00::/8"]
[files]
write_roots = ["$WORKSPACE"]
forbidden_reads = ["~/.aws/**"]
[programs]
forbidden = ["curl"]
"#;
    let p = Policy::parse("p.toml", text, WS, HOME).unwrap();
    let s = job().summary();
    let v: Vec<_> = p.check(&s).into_iter().map(|v| (v.rule, v.what, v.chain.join(" > "))).collect();
    assert_eq!(
        v,
        [
            (
                "egress".into(),
                "connect to 10.99.0.1:443 (failed (ECONNREFUSED))".into(),
                "sh job.sh (100) > python3 x.py (102)".into()
            ),
            ("write".into(), "created, deleted /tmp/cc123.s".into(), "sh job.sh (100)".into()),
            (
                "write".into(),
                "created, deleted /tmp/cc123.s".into(),
                "sh job.sh (100) > cc -c a.c -o out/a.o (101)".into()
            ),
            ("read".into(), "read /home/ci/.aws/credentials".into(), "sh job.sh (100) > python3 x.py (102)".into()),
            ("program".into(), "ran /usr/bin/curl".into(), "sh job.sh (100) > curl http://10.99.0.1/ (103)".into()),
        ]
    );
    // Hosts allow by the names the job's DNS answers gave; names asked beyond them are
    // violations of their own.
    let hosts = Policy::parse("p.toml", "[egress]\nhosts = [\"*.test\"]\n", WS, HOME).unwrap();
    let v: Vec<_> = hosts.check(&s).into_iter().map(|v| (v.rule, v.what)).collect();
    assert!(v.contains(&("dns".into(), "DNS query for evil\\x0a| x |".into())), "{v:?}");
    assert!(!v.iter().any(|(_, w)| w.contains("10.7.0.1:")), "{v:?}");
    assert!(v.contains(&("egress".into(), "connect to 10.99.0.1:443 (failed (ECONNREFUSED))".into())), "{v:?}");
    // An allowed run has none.
    let open = Policy::parse("p.toml", "[egress]\ncidrs = [\"0.0.0.0/0\", \"::/0\"]\n", WS, HOME).unwrap();
    assert!(open.check(&s).is_empty());
    // Ports narrow the allowed addresses.
    let ports =
        Policy::parse("p.toml", "[egress]\ncidrs = [\"0.0.0.0/0\", \"::/0\"]\nports = [443]\n", WS, HOME).unwrap();
    assert_eq!(ports.check(&s).len(), 5, "10.7.0.1:53, :8080 and the three on port 80");
}

#[test]
fn bad_policies_name_file_line_and_key() {
    let cases = [
        ("[egress]\ncidrs = [\"10.0.0.0/33\"]\n", "p.toml:2: egress.cidrs: \"10.0.0.0/33\" is not an address or CIDR"),
        ("[egress]\n\nports = [70000]\n", "p.toml:3: egress.ports: 70000 is not a port"),
        ("[egress]\nhosts = [\"a b\"]\n", "p.toml:2: egress.hosts: \"a b\" is not a DNS name"),
        ("[files]\nwrite_roots = [\"rel\"]\n", "p.toml:2: files.write_roots: \"rel\": must be an absolute path"),
        ("[files]\nforbidden_reads = [\"/a/[\"]\n", "p.toml:2: files.forbidden_reads: \"/a/[\""),
        ("[files]\nwrite_root = [\"/x\"]\n", "p.toml:2: write_root: unknown field `write_root`"),
        ("[egress\n", "p.toml:1: policy: "),
    ];
    for (text, want) in cases {
        let e = Policy::parse("p.toml", text, WS, HOME).unwrap_err().to_string();
        assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn baseline_reports_only_what_is_new() {
    let s = job().summary();
    let ctx = job().context().clone();
    let b = Baseline::of(&s, &ctx);
    let reloaded: Baseline = serde_json::from_str(&b.to_json()).unwrap();
    assert!(reloaded.diff(&Baseline::of(&s, &ctx)).is_empty());
    let mut j = job();
    // Same temp dir name differs; a new endpoint does not.
    j.add(&open(90, 100, "/tmp/other.s", O_WRONLY | O_CREAT | O_EXCL));
    j.add(&connect(91, 100, "192.0.2.9:22", ConnectResult::Connected));
    let d = b.diff(&Baseline::of(&j.summary(), &ctx));
    assert_eq!(d.endpoints, ["192.0.2.9:22"]);
    assert!(d.programs.is_empty() && d.write_roots.is_empty() && d.dns.is_empty());
}

/// Every table cell's text, per table, as pulldown-cmark renders them.
fn tables(md: &str) -> Vec<Vec<Vec<String>>> {
    let mut out = Vec::new();
    let mut cell: Option<String> = None;
    for e in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match e {
            Md::Start(Tag::Table(_)) => out.push(Vec::new()),
            Md::Start(Tag::TableRow | Tag::TableHead) => out.last_mut().unwrap().push(Vec::new()),
            Md::Start(Tag::TableCell) => cell = Some(String::new()),
            Md::End(TagEnd::TableCell) => out.last_mut().unwrap().last_mut().unwrap().push(cell.take().unwrap()),
            Md::Text(t) | Md::Code(t) => {
                if let Some(c) = cell.as_mut() {
                    c.push_str(&t);
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn markdown_tables_hold_the_json_facts() {
    let mut s = job().summary();
    s.command = vec!["sh".into(), "job|.sh".into()];
    s.violations = Policy::parse("p", "[programs]\nforbidden = [\"curl\"]\n", WS, HOME).unwrap().check(&s);
    let md = render::markdown(&s);
    let json: serde_json::Value = serde_json::from_str(&render::json(&s)).unwrap();
    let cells: Vec<String> = tables(&md).into_iter().flatten().flatten().collect();
    let has = |v: &str| cells.iter().any(|c| c.trim_start_matches('\u{a0}') == v);
    for d in json["egress"].as_array().unwrap() {
        let a = d["address"].as_str().unwrap();
        let ep = if a.contains(':') { format!("[{a}]:{}", d["port"]) } else { format!("{a}:{}", d["port"]) };
        assert!(has(&ep), "{ep} not in {cells:?}");
        assert!(has(d["outcome"].as_str().unwrap()));
    }
    for f in json["files"].as_array().unwrap() {
        assert!(has(f["display"].as_str().unwrap()), "{f}");
    }
    for p in json["processes"].as_array().unwrap() {
        assert!(has(&p["pid"].to_string()));
    }
    for n in json["dns"].as_array().unwrap() {
        // The hostile name stays one cell, escaped, pipes and all.
        assert!(has(n["name"].as_str().unwrap()), "{n}");
    }
    assert!(has("ran /usr/bin/curl"));
    assert!(has("~/.aws/credentials"));
    assert!(has("@abstract|x"));
    // Every row has as many cells as its header: no name broke a table.
    for t in tables(&md) {
        assert!(t.iter().all(|r| r.len() == t[0].len()), "{t:?}");
    }
}
