//! `tracer ci` end to end: a job script that compiles, writes in its workspace, makes and
//! deletes a temp file, reads a fake `~/.aws/credentials`, resolves a "registry" through a
//! real dnsmasq and fetches from it over a real TCP listener (another network namespace),
//! and tries a forbidden address. The tracer runs in the job's namespace.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};
use serde_json::Value;
use tracer_tests::{TempDir, netns::Netns, tracer_bin, wait_exit};

const REGISTRY: &str = "10.88.0.2";
/// No route from the job's namespace: connect fails at once (ENETUNREACH).
const FORBIDDEN: &str = "10.89.0.9:443";

const JOB: &str = r#"#!/bin/sh
set -e
mkdir -p out
cc -c hello.c -o out/hello.o
: > "out/$(printf 'x|y\n<img src=x>')"
t=$(mktemp)
echo scratch > "$t"
mv "$t" "$t.1"
chmod 600 "$t.1"
rm "$t.1"
cat "$HOME/.aws/credentials" > /dev/null
getent hosts registry.test > out/resolved
curl -sf http://registry.test:8080/ -o out/index.html
/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1])' > out/port
if [ -n "$EXTRA" ]; then curl -s --connect-timeout 2 "http://$FORBIDDEN/" || true; fi
if [ -n "$UDPDNS" ]; then /usr/bin/python3 -c 'import socket, struct
q = struct.pack(">6H", 0x1234, 0x100, 1, 0, 0, 0) + b"\x0bunconnected\x04test\x00" + struct.pack(">2H", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, ("10.88.0.2", 53))
s.recvfrom(512)'; fi
if [ -n "$SLEEP" ]; then sleep "$SLEEP"; fi
if [ -n "$STUBBORN" ]; then trap '' TERM; while :; do sleep 0.2 || true; done; fi
exit "${STATUS:-0}"
"#;

struct Env {
    ws: TempDir,
    home: TempDir,
    out: TempDir,
    job: Netns,
    _reg: Netns,
    dnsmasq: Child,
    resolv_dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

/// The job's namespace, the registry's (dnsmasq answering registry.test, an HTTP listener
/// on :8080), a workspace with the job script and a HOME with credentials.
fn env() -> Env {
    let job = Netns::new("cijob");
    let reg = Netns::new("cireg");
    job.veth(&reg, &["10.88.0.1/24"], &[&format!("{REGISTRY}/24")]);
    // `ip netns exec` mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
    let resolv_dir = Path::new("/etc/netns").join(&job.name);
    std::fs::create_dir_all(&resolv_dir).unwrap();
    std::fs::write(resolv_dir.join("resolv.conf"), format!("nameserver {REGISTRY}\n")).unwrap();
    let dnsmasq = reg
        .command("dnsmasq")
        .args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--user=root"])
        .args(["--bind-interfaces", &format!("--listen-address={REGISTRY}"), "--pid-file="])
        .arg(format!("--address=/registry.test/{REGISTRY}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (cargo xtask setup installs dnsmasq-base)");
    let listener = reg.run_in(|| TcpListener::bind((REGISTRY, 8080)).unwrap());
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
        }
    });
    // dnsmasq answers once it listens.
    for _ in 0..100 {
        if job.try_exec(&["getent", "hosts", "registry.test"]).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ws = TempDir::new("ciws");
    std::fs::write(ws.file("hello.c"), "int hello(void) { return 42; }\n").unwrap();
    std::fs::write(ws.file("job.sh"), JOB).unwrap();
    std::fs::set_permissions(ws.file("job.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let home = TempDir::new("cihome");
    std::fs::create_dir_all(home.file(".aws")).unwrap();
    std::fs::write(home.file(".aws/credentials"), "[default]\naws_secret_access_key = fake\n").unwrap();
    Env { ws, home, out: TempDir::new("ciout"), job, _reg: reg, dnsmasq, resolv_dir }
}

impl Env {
    /// `tracer ci ARGS -- ./job.sh` in the job's namespace, with `vars` for the script.
    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut c = self.job.command(tracer_bin());
        c.arg("ci").args(args).args(["--", "./job.sh"]);
        c.current_dir(self.ws.path())
            .env("HOME", self.home.path())
            .env("GITHUB_WORKSPACE", self.ws.path())
            .env_remove("CI_PROJECT_DIR")
            .env("FORBIDDEN", FORBIDDEN)
            .env("TMPDIR", "/tmp");
        for (k, v) in vars {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.command(args, vars).output().unwrap()
    }

    fn file(&self, name: &str) -> String {
        self.out.file(name).to_str().unwrap().to_string()
    }

    /// Until the job fetched from the registry: the tracer is running (its signal handlers
    /// are set only once the programs are loaded, which parallel tests slow down).
    fn wait_started(&self) {
        for _ in 0..600 {
            if self.ws.file("out/index.html").exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the job did not start");
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.out.file(name)).unwrap()).unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

/// The process entry whose argv starts with `argv0`.
fn process<'a>(j: &'a Value, argv0: &str) -> &'a Value {
    j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["argv"][0] == argv0)
        .unwrap_or_else(|| panic!("no {argv0} in {:#}", j["processes"]))
}

fn destination<'a>(j: &'a Value, endpoint: &str) -> &'a Value {
    let (addr, port) = endpoint.rsplit_once(':').unwrap();
    j["egress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == addr && d["port"].as_u64().is_some_and(|p| p.to_string() == port))
        .unwrap_or_else(|| panic!("no {endpoint} in {:#}", j["egress"]))
}

/// Every table cell of the Markdown, as a parser reads it.
fn cells(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell: Option<String> = None;
    for e in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match e {
            Md::Start(Tag::TableCell) => cell = Some(String::new()),
            Md::End(TagEnd::TableCell) => out.push(cell.take().unwrap().trim_start_matches('\u{a0}').to_string()),
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
fn ci_summary_shows_what_the_job_did() {
    let e = env();
    let o = e.run(&["--summary", &e.file("s.md"), "--json", &e.file("s.json")], &[("EXTRA", "1")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = e.json("s.json");
    // The process tree with exit statuses.
    assert_eq!(process(&j, "/bin/sh")["depth"], 0);
    assert_eq!(process(&j, "/bin/sh")["status"], 0);
    for tool in ["cc", "mktemp", "rm", "cat", "getent"] {
        let p = process(&j, tool);
        assert_eq!((p["status"].as_i64(), p["depth"].as_i64()), (Some(0), Some(1)), "{p}");
    }
    let cc1 = j["processes"].as_array().unwrap().iter().find(|p| p["argv"][0].as_str().unwrap().ends_with("/cc1"));
    assert_eq!(cc1.expect("cc1 under cc")["depth"], 2);
    let curls: Vec<_> = j["processes"].as_array().unwrap().iter().filter(|p| p["argv"][0] == "curl").collect();
    assert_eq!(curls.len(), 2);
    // curl's exit 7: could not connect; `|| true` keeps the job going.
    assert_eq!((curls[0]["status"].as_i64(), curls[0]["failed"].as_bool()), (Some(0), Some(false)));
    assert_eq!((curls[1]["status"].as_i64(), curls[1]["failed"].as_bool()), (Some(7), Some(true)));
    assert_eq!(j["exit"]["status"], 0);
    // Files: workspace-relative, grouped by directory.
    let files: Vec<(String, String)> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            !f["display"].as_str().unwrap().starts_with("/tmp/cc") && !f["display"].as_str().unwrap().ends_with(".1")
        })
        .map(|f| (f["display"].as_str().unwrap().to_string(), strs(&f["ops"]).join(",")))
        .collect();
    let tmp = files.iter().find(|(p, _)| p.starts_with("/tmp/tmp.")).expect("the mktemp file").clone();
    assert_eq!(
        files,
        [
            tmp.clone(),
            // mkdir -p out, seen by the built-in audit rule.
            ("out".into(), "mkdir".into()),
            ("out/hello.o".into(), "written".into()),
            ("out/index.html".into(), "written".into()),
            ("out/port".into(), "written".into()),
            ("out/resolved".into(), "written".into()),
            // A hostile name stays one escaped entry.
            ("out/x|y\\x0a<img src=x>".into(), "written".into()),
        ]
    );
    // mktemp's file: created, written by echo, renamed, chmod-ed and deleted under its new name.
    assert_eq!(tmp.1, format!("created,renamed to {}.1,written", tmp.0));
    let moved = j["files"].as_array().unwrap().iter().find(|f| f["display"] == format!("{}.1", tmp.0)).unwrap();
    assert_eq!(strs(&moved["ops"]), ["chmod", "deleted", "renamed here"]);
    // The credential read, with its chain.
    let reads = j["sensitive_reads"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["display"], "~/.aws/credentials");
    let chain = strs(&reads[0]["chain"]);
    assert!(chain[0].starts_with("/bin/sh ./job.sh (") && chain[1].starts_with("cat "), "{chain:?}");
    // Egress: the DNS server (UDP), the registry (a non-blocking connect followed to
    // established) and the forbidden address (failed).
    let egress: Vec<String> = j["egress"].as_array().unwrap().iter().map(|d| d["address"].to_string()).collect();
    assert_eq!(egress.len(), 3, "{:#}", j["egress"]);
    let dns = destination(&j, &format!("{REGISTRY}:53"));
    assert_eq!((dns["protocol"].as_str(), dns["outcome"].as_str()), (Some("udp"), Some("udp")));
    let reg = destination(&j, &format!("{REGISTRY}:8080"));
    assert_eq!((reg["protocol"].as_str(), reg["outcome"].as_str()), (Some("tcp"), Some("established")));
    assert_eq!(destination(&j, FORBIDDEN)["outcome"], "failed (ENETUNREACH)");
    // The names asked, captured in the kernel, and the destination they resolved to.
    let names: Vec<&str> = j["dns"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["registry.test"]);
    assert_eq!(strs(&reg["names"]), ["registry.test"]);
    assert!(destination(&j, FORBIDDEN)["names"].as_array().unwrap().is_empty());
    assert!(j["violations"].as_array().unwrap().is_empty());
    // The listening socket the job opened, with the process.
    let port: u64 = std::fs::read_to_string(e.ws.file("out/port")).unwrap().trim().parse().unwrap();
    let l = &j["listeners"].as_array().unwrap()[..];
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!((l[0]["address"].as_str(), l[0]["port"].as_u64()), (Some("127.0.0.1"), Some(port)));
    assert_eq!(l[0]["pids"][0], process(&j, "/usr/bin/python3")["pid"]);

    // The Markdown renders, and its tables hold the JSON's facts.
    let md = std::fs::read_to_string(e.out.file("s.md")).unwrap();
    let cells = cells(&md);
    let has = |v: &str| cells.iter().any(|c| c == v);
    for d in j["egress"].as_array().unwrap() {
        let ep = format!("{}:{}", d["address"].as_str().unwrap(), d["port"]);
        assert!(has(&ep) && has(d["outcome"].as_str().unwrap()), "{ep} not in {cells:?}");
    }
    for f in j["files"].as_array().unwrap() {
        assert!(has(f["display"].as_str().unwrap()), "{f} not in {cells:?}");
    }
    for p in j["processes"].as_array().unwrap() {
        assert!(has(&p["pid"].to_string()), "{p} not in {cells:?}");
    }
    // No name broke a table: every row has its header's cells.
    let mut rows = Vec::new();
    for e in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        match e {
            Md::Start(Tag::TableHead | Tag::TableRow) => rows.push(0),
            Md::Start(Tag::TableCell) => *rows.last_mut().unwrap() += 1,
            Md::Start(Tag::Table(a)) => rows.push(-(a.len() as i64)),
            _ => {}
        }
    }
    let mut want = 0;
    for r in rows {
        if r < 0 {
            want = -r;
        } else {
            assert_eq!(r, want, "{md}");
        }
    }
    // The name's `<img ...>` is text, never HTML.
    for e in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        if let Md::Html(h) | Md::InlineHtml(h) = e {
            assert!(!h.contains("img"), "raw HTML from a file name: {h}");
        }
    }
    assert!(has("~/.aws/credentials") && has("exit 7") && has("registry.test") && has(&port.to_string()));
    // The same summary, short, on stdout.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("egress: {FORBIDDEN} failed (ENETUNREACH)")), "{out}");
    assert!(out.contains(&format!("egress: {REGISTRY}:8080 (registry.test) established")), "{out}");
    assert!(out.contains("sensitive read: ~/.aws/credentials by /bin/sh ./job.sh"), "{out}");
}

const POLICY: &str = r#"
[egress]
cidrs = ["10.88.0.0/24"]
ports = [53, 8080]
[files]
write_roots = ["$WORKSPACE", "/tmp"]
forbidden_reads = ["~/.aws/**"]
[programs]
forbidden = ["nc"]
"#;

#[test]
fn ci_policy_violations_exit_3_with_chains() {
    let e = env();
    std::fs::write(e.out.file("policy.toml"), POLICY).unwrap();
    let o = e.run(&["--policy", &e.file("policy.toml"), "--json", &e.file("p.json")], &[("EXTRA", "1")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let j = e.json("p.json");
    let v: Vec<(String, String, Vec<String>)> = j["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["rule"].as_str().unwrap().into(), v["what"].as_str().unwrap().into(), strs(&v["chain"])))
        .collect();
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!((v[0].0.as_str(), v[0].1.as_str()), ("egress", "connect to 10.89.0.9:443 (failed (ENETUNREACH))"));
    assert!(
        v[0].2[0].starts_with("/bin/sh ./job.sh (") && v[0].2[1].starts_with("curl -s --connect-timeout 2"),
        "{v:?}"
    );
    let cred = format!("read {}/.aws/credentials", e.home.path().display());
    assert_eq!((v[1].0.as_str(), v[1].1.as_str()), ("read", cred.as_str()));
    assert!(v[1].2[1].starts_with("cat "), "{v:?}");
    assert_eq!(j["exit"]["code"], 3);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("VIOLATION egress: connect to 10.89.0.9:443"), "{out}");

    // The job's own failure wins over the policy's 3.
    let o = e.run(&["--policy", &e.file("policy.toml")], &[("EXTRA", "1"), ("STATUS", "5")]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
}

#[test]
fn ci_bad_policy_is_exit_2_and_runs_nothing() {
    let e = env();
    std::fs::write(e.out.file("bad.toml"), "[egress]\ncidrs = [\"10.88.0.0/24\"]\nports = [0]\n").unwrap();
    let o = e.run(&["--policy", &e.file("bad.toml"), "--json", &e.file("never.json")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:3: egress.ports: 0 is not a port", e.file("bad.toml"))), "{err}");
    assert!(!e.ws.file("out").exists(), "the job ran");
    assert!(!e.out.file("never.json").exists());
}

#[test]
fn ci_baseline_reports_only_the_new_endpoint() {
    let e = env();
    let o = e.run(&["--record-baseline", &e.file("base.json")], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Same job again: nothing new, though temp names and pids differ.
    let o = e.run(&["--baseline", &e.file("base.json"), "--json", &e.file("same.json")], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let new = &e.json("same.json")["baseline_new"];
    for k in ["endpoints", "dns", "programs", "write_roots"] {
        assert!(new[k].as_array().unwrap().is_empty(), "{k}: {new}");
    }
    let o = e.run(&["--baseline", &e.file("base.json"), "--json", &e.file("new.json")], &[("EXTRA", "1")]);
    assert_eq!(o.status.code(), Some(0), "a baseline reports, it does not fail the job: {}", text(&o));
    let new = &e.json("new.json")["baseline_new"];
    assert_eq!(strs(&new["endpoints"]), [FORBIDDEN]);
    for k in ["dns", "programs", "write_roots"] {
        assert!(new[k].as_array().unwrap().is_empty(), "{k}: {new}");
    }
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("NEW endpoint: {FORBIDDEN}")));
}

#[test]
fn ci_failing_and_killed_jobs_still_get_a_summary() {
    let e = env();
    // UDPDNS: a query sent with sendto on an unconnected socket (the address in the call,
    // not in the socket), its answer read with recvfrom.
    let o = e.run(&["--summary", &e.file("f.md"), "--json", &e.file("f.json")], &[("STATUS", "1"), ("UDPDNS", "1")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = e.json("f.json");
    let names: Vec<&str> = j["dns"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"unconnected.test"), "{names:?}");
    assert_eq!((j["exit"]["status"].as_i64(), j["exit"]["code"].as_i64()), (Some(1), Some(1)));
    assert_eq!(process(&j, "/bin/sh")["failed"], true);
    assert_eq!(destination(&j, &format!("{REGISTRY}:8080"))["outcome"], "established");
    assert!(std::fs::read_to_string(e.out.file("f.md")).unwrap().contains("exit 1 in"));

    // A CI timeout: SIGTERM to the tracer 2 s in stops the whole tree and still sums up.
    // (`out/` goes first: its index.html tells when this run is under way.)
    std::fs::remove_dir_all(e.ws.file("out")).unwrap();
    let mut child = e
        .command(&["--summary", &e.file("k.md"), "--json", &e.file("k.json")], &[("SLEEP", "60")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    e.wait_started();
    std::thread::sleep(Duration::from_secs(2));
    // `ip netns exec` execs the tracer: the child's pid is the tracer's.
    // SAFETY: kill takes plain integers.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let st = wait_exit(&mut child, 20);
    assert_eq!(st.code(), Some(128 + 15));
    let j = e.json("k.json");
    assert_eq!((j["exit"]["signal"].as_str(), j["exit"]["stopped"].as_bool()), (Some("SIGTERM"), Some(true)));
    let sleep = process(&j, "sleep");
    assert_eq!((sleep["signal"].as_str(), sleep["failed"].as_bool()), (Some("SIGTERM"), Some(true)), "{sleep}");
    // Everything before the sleep is there.
    assert_eq!(destination(&j, &format!("{REGISTRY}:8080"))["outcome"], "established");
    assert_eq!(j["sensitive_reads"].as_array().unwrap().len(), 1);
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("killed by SIGTERM (stopped by the tracer)"), "{out}");
    assert!(std::fs::read_to_string(e.out.file("k.md")).unwrap().contains("killed by SIGTERM"));
}

#[test]
fn ci_job_ignoring_sigterm_is_killed_after_the_grace_period() {
    let e = env();
    let mut child =
        e.command(&["--json", &e.file("s.json")], &[("STUBBORN", "1")]).stdout(Stdio::null()).spawn().unwrap();
    e.wait_started();
    std::thread::sleep(Duration::from_secs(2));
    let t = std::time::Instant::now();
    // SAFETY: kill takes plain integers.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let st = wait_exit(&mut child, 20);
    // The shell ignores SIGTERM: the group gets SIGKILL 5 s later.
    assert!(t.elapsed() >= Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(st.code(), Some(128 + 9));
    let j = e.json("s.json");
    assert_eq!((j["exit"]["signal"].as_str(), j["exit"]["stopped"].as_bool()), (Some("SIGKILL"), Some(true)));
    assert_eq!(process(&j, "/bin/sh")["signal"], "SIGKILL");
}
