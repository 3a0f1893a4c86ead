//! `tracer trace --output syslog+tcp://|syslog+udp://|syslog://SOCKET` into a real rsyslogd
//! (Debian's, started by the test on private ports and a private socket): every event
//! arrives as one RFC 5424 message, its fields in the structured data and its JSON line as
//! the message.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    net::TcpListener,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Rsyslog {
    child: Child,
    tcp: u16,
    udp: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rsyslogd with one input per transport, each into its own file: MSGID, structured data
/// and message, tab-separated.
fn rsyslog(dir: &TempDir) -> Rsyslog {
    let (tcp, udp) = (free_port(), free_port());
    let d = dir.path().display();
    let conf = format!(
        r#"global(workDirectory="{d}" maxMessageSize="65536")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
template(name="t" type="string" string="%msgid%\t%structured-data%\t%msg%\n")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp" rcvbufSize="16m")
input(type="imuxsock" Socket="{d}/log.sock" ruleset="unix" UseSpecialParser="off")
ruleset(name="tcp") {{ action(type="omfile" file="{d}/tcp.log" template="t") }}
ruleset(name="udp") {{ action(type="omfile" file="{d}/udp.log" template="t") }}
ruleset(name="unix") {{ action(type="omfile" file="{d}/unix.log" template="t") }}
"#
    );
    std::fs::write(dir.file("rsyslog.conf"), conf).unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(dir.file("rsyslog.conf"))
        .arg("-i")
        .arg(dir.file("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.file("rsyslogd.stderr")).unwrap())
        .spawn()
        .expect("rsyslogd");
    let r = Rsyslog { child, tcp, udp };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() || !dir.file("log.sock").exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

fn trace(output: &str, script: &str) -> Output {
    Command::new(tracer_bin()).args(["trace", "--output", output, "--", "/bin/sh", "-c", script]).output().unwrap()
}

fn events_in(o: &Output) -> usize {
    let e = String::from_utf8_lossy(&o.stderr);
    let l = e.lines().find(|l| l.contains(" events, ")).unwrap_or_else(|| panic!("no closing line: {e}"));
    l.trim_start_matches("tracer: ").split(' ').next().unwrap().parse().unwrap()
}

/// The file's lines once MARK has arrived N times (rsyslogd writes asynchronously).
fn lines_with(path: &std::path::Path, mark: &str, n: usize) -> Vec<String> {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let got = lines.iter().filter(|l| l.contains(&format!("\"argv\":[\"/bin/true\",\"{mark}\"]"))).count();
        if got >= n {
            // Let the rest of the run's lines land too.
            std::thread::sleep(Duration::from_millis(500));
            return std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect();
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{mark}: {got} of {n} arrived in {}", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_line(line: &str, mark: &str) {
    let mut parts = line.splitn(3, '\t');
    let (msgid, sd, msg) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap().trim_start());
    let ev: Value = serde_json::from_str(msg).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(msgid, ev["event"], "{line}");
    assert!(sd.starts_with("[tracer@32473 "), "{line}");
    for (k, v) in ev.as_object().unwrap() {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Array(_) => v.to_string(),
            other => other.to_string(),
        };
        if k == "auid" || k == "ses" || k == "time" {
            continue; // stored as numbers (unset: 4294967295) / at microseconds in the header
        }
        let esc = text.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
        assert!(sd.contains(&format!(" {k}=\"{esc}\"")), "{k}={esc} not in {sd}");
    }
    if ev["argv"] == serde_json::json!(["/bin/true", mark]) {
        assert_eq!(ev["filename"].as_str().map(|f| f.ends_with("/true")), Some(true));
    }
}

#[test]
fn every_event_reaches_a_real_rsyslog_over_tcp_udp_and_a_unix_socket() {
    let dir = TempDir::new("syslog");
    let r = rsyslog(&dir);
    let script = |mark: &str| format!("i=0; while [ $i -lt 25 ]; do /bin/true {mark}; i=$((i+1)); done");
    for (url, file, mark) in [
        (format!("syslog+tcp://127.0.0.1:{}", r.tcp), "tcp.log", "via-tcp"),
        (format!("syslog+udp://127.0.0.1:{}", r.udp), "udp.log", "via-udp"),
        (format!("syslog://{}", dir.file("log.sock").display()), "unix.log", "via-unix"),
    ] {
        let o = trace(&url, &script(mark));
        assert!(o.status.success(), "{url}: {}", String::from_utf8_lossy(&o.stderr));
        let lines = lines_with(&dir.file(file), mark, 25);
        let events = events_in(&o);
        // Over UDP the receiver drops what its socket buffer cannot hold (16 of 2078 under a
        // full test suite's load with the default size): rsyslog gets a 16 MiB buffer above.
        assert_eq!(lines.len(), events, "{url}: one message per event");
        for l in &lines {
            check_line(l, mark);
        }
        println!("{url}: {events} events, {} messages", lines.len());
    }
}

#[test]
fn an_unreachable_syslog_receiver_fails_at_start() {
    let dir = TempDir::new("syslogbad");
    for url in [
        format!("syslog+tcp://127.0.0.1:{}", free_port()),
        format!("syslog://{}", dir.file("nobody.sock").display()),
        "syslog+udp://127.0.0.1".into(),
        "syslog+tls://127.0.0.1:6514".into(),
    ] {
        let o = trace(&url, "true");
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{url}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// The seed's path: the tracer's syslog stream over TCP into a real rsyslogd, which writes
/// it with its own PostgreSQL output (rsyslog-pgsql's ompgsql, Debian's SystemEvents
/// schema). Every event is a row and its Message is the event's JSON, quotes and
/// backslashes included.
#[test]
fn rsyslog_writes_every_event_into_postgresql_with_its_fields_intact() {
    let pg = pg::Postgres::start();
    pg.psql("postgres", &format!("CREATE DATABASE syslog OWNER {}", pg::USER));
    let schema = std::fs::read_to_string("/usr/share/dbconfig-common/data/rsyslog-pgsql/install/pgsql")
        .expect("rsyslog-pgsql's schema (cargo xtask setup installs rsyslog-pgsql)");
    pg.psql("syslog", &schema);
    pg.psql(
        "syslog",
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {0}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {0}",
            pg::USER
        ),
    );
    let dir = TempDir::new("rsyslogpg");
    let tcp = free_port();
    let d = dir.path().display();
    // Standard SQL string escaping (quotes doubled, backslashes kept), as PostgreSQL reads it.
    let conf = format!(
        r#"global(workDirectory="{d}" maxMessageSize="65536")
module(load="imtcp")
module(load="ompgsql")
template(name="sql" type="string" option.stdsql="on"
  string="INSERT INTO SystemEvents (Message, FromHost, SysLogTag, Priority, Facility, DeviceReportedTime, ReceivedAt) VALUES ('%msg%', '%hostname%', '%syslogtag%', %syslogpriority%, %syslogfacility%, '%timereported:::date-pgsql%', '%timegenerated:::date-pgsql%')")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="pg")
ruleset(name="pg") {{
  action(type="ompgsql" server="127.0.0.1" port="{port}" db="syslog" user="{user}" pass="{pass}" template="sql")
}}
"#,
        port = pg.port,
        user = pg::USER,
        pass = pg::PASSWORD,
    );
    std::fs::write(dir.file("rsyslog.conf"), conf).unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(dir.file("rsyslog.conf"))
        .arg("-i")
        .arg(dir.file("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.file("rsyslogd.stderr")).unwrap())
        .spawn()
        .expect("rsyslogd");
    let _r = Rsyslog { child, tcp, udp: 0 };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let hostile = r#"it's "quoted" \ back]slash"#;
    let script = "i=0; while [ $i -lt 25 ]; do /bin/true 'it'\\''s \"quoted\" \\ back]slash'; i=$((i+1)); done";
    let o = trace(&format!("syslog+tcp://127.0.0.1:{tcp}"), script);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = events_in(&o);
    let count = || -> usize { pg.psql("syslog", "SELECT COUNT(*) FROM SystemEvents").parse().unwrap() };
    let t = Instant::now();
    while count() < events {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} of {events} rows; rsyslogd: {}",
            count(),
            std::fs::read_to_string(dir.file("rsyslogd.stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), events, "one row per event");
    let rows = pg.psql("syslog", "SELECT Message FROM SystemEvents ORDER BY ID");
    let mut marked = 0;
    for m in rows.lines() {
        let ev: Value = serde_json::from_str(m).unwrap_or_else(|e| panic!("{e}: {m}"));
        assert!(ev["event"].is_string() && ev["pid"].is_number() && ev["time"].is_string(), "{m}");
        if ev["argv"] == serde_json::json!(["/bin/true", hostile]) {
            marked += 1;
        }
    }
    assert_eq!(marked, 25, "the hostile argument arrived intact in every row");
    let tag = pg.psql("syslog", "SELECT DISTINCT SysLogTag FROM SystemEvents");
    assert!(tag.starts_with("tracer"), "{tag}");
    println!("rsyslog -> PostgreSQL: {events} events, {events} rows, fields intact");
}
