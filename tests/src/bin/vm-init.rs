//! pid 1 of the `cargo xtask vm-test` guests (a static binary, `/init` of the initramfs).
//! It mounts what the tracer needs, traces a small login session with the real programs on
//! the guest's kernel, checks the events, prints one `VMTEST RESULT: ...` line for the host
//! to parse from the serial console, and powers off.
//!
//! `vm-init session` is that session (run under the tracer): it sets its own login UID,
//! runs `chroot JAIL busybox cat`, then becomes the workload, which drops to uid 7005.
// The package's dependencies serve its library and the other binaries.
#![allow(unused_crate_dependencies)]

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt, process::CommandExt},
    process::Command,
    time::Instant,
};

use serde_json::Value;
use tracer_tests::{bytes_of, parse_json_lines};

#[path = "vm-init/protect.rs"]
mod protect;
#[path = "vm-init/rules.rs"]
mod rules;

const JAIL: &str = "/tmp/jail";
const WORK: &str = "/tmp/work";
const EVENTS: &str = "/tmp/events.json";
const REPORT: &str = "/tmp/report.json";
/// A non-UTF-8 argument and one with a newline: argv must come back byte for byte.
const ECHO_ARGV: [&[u8]; 4] = [b"/bin/echo", b"hello world", b"new\nline", b"bad\xffutf8"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("session") {
        session();
    }
    if args.first().map(String::as_str) == Some("stig-session") {
        rules::session();
    }
    if args.first().is_some_and(|a| ["agent", "read", "connect", "connect-as-user"].contains(&a.as_str())) {
        protect::role(&args);
    }
    if std::process::id() != 1 {
        eprintln!("vm-init: the init of the vm-test guests (run `cargo xtask vm-test`), not for the host");
        std::process::exit(2);
    }
    // Whatever happens, the host gets a result line and the VM powers off (pid 1 exiting
    // would panic the kernel, which the host also catches, but with less to go on).
    std::panic::set_hook(Box::new(|info| finish(Err(format!("vm-init panicked: {info}")))));
    let start = Instant::now();
    let r = setup().and_then(|()| run_checks());
    eprintln!("vm-init: done in {:.1}s", start.elapsed().as_secs_f64());
    finish(r);
}

fn finish(r: Result<usize, String>) -> ! {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    match r {
        Ok(n) => println!("VMTEST RESULT: PASS kernel={} checks={n}", release.trim()),
        Err(e) => println!("VMTEST RESULT: FAIL kernel={} {}", release.trim(), e.replace('\n', " | ")),
    }
    // SAFETY: no arguments but a constant: sync, then power off (this is init in a throwaway VM).
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    std::process::exit(1)
}

fn mount(fstype: &str, target: &str) -> Result<(), String> {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    // SAFETY: the CStrings are NUL-terminated and outlive the call (temporaries live to the end of the
    // statement); no mount data.
    let rc = unsafe { libc::mount(c(fstype).as_ptr(), c(target).as_ptr(), c(fstype).as_ptr(), 0, std::ptr::null()) };
    // EBUSY: already mounted (devtmpfs can be mounted by the kernel).
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EBUSY) {
        return Err(format!("mount {fstype} on {target}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `ip link set lo up`: without it a loopback connect fails with ENETUNREACH, not
/// ECONNREFUSED.
fn loopback_up() -> Result<(), String> {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: i16,
        _pad: [u8; 22],
    }
    const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
    let mut req = IfReq { name: [0; 16], flags: libc::IFF_UP as i16, _pad: [0; 22] };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: req is a valid, writable ifreq-sized struct for SIOCSIFFLAGS; the fd is ours and closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let rc = libc::ioctl(fd, SIOCSIFFLAGS as _, &mut req);
        libc::close(fd);
        if rc != 0 {
            return Err(format!("lo up: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn setup() -> Result<(), String> {
    // No tracefs: a fresh machine has none, and the tracer must mount it itself.
    for (fs, target) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"), ("bpf", "/sys/fs/bpf")] {
        mount(fs, target)?;
    }
    loopback_up()?;
    let io = |what: &str, r: std::io::Result<()>| r.map_err(|e| format!("{what}: {e}"));
    io("work dir", std::fs::create_dir_all(WORK))?;
    // The workload runs as uid 7005 in it.
    io("work dir mode", std::fs::set_permissions(WORK, PermissionsExt::from_mode(0o777)))?;
    io("notes", std::fs::write(format!("{WORK}/notes.txt"), "notes\n"))?;
    io("secret", std::fs::write("/tmp/secret", "secret\n"))?;
    io("secret mode", std::fs::set_permissions("/tmp/secret", PermissionsExt::from_mode(0o600)))?;
    io(
        "jail",
        std::fs::create_dir_all(format!("{JAIL}/bin")).and_then(|()| std::fs::create_dir_all(format!("{JAIL}/etc"))),
    )?;
    io("jail busybox", std::fs::copy("/bin/busybox", format!("{JAIL}/bin/busybox")).map(drop))?;
    io("jail hostname", std::fs::write(format!("{JAIL}/etc/hostname"), "jailed\n"))?;
    Ok(())
}

/// The traced session: a login (loginuid 7005) that chroots as root, then as uid 7005
/// opens, connects and execs through the workload.
fn session() -> ! {
    if let Err(e) = std::fs::write("/proc/self/loginuid", "7005") {
        eprintln!("vm-init session: set loginuid: {e}");
        std::process::exit(3);
    }
    let out = Command::new("/bin/chroot").args([JAIL, "/bin/busybox", "cat", "/etc/hostname"]).output();
    match out {
        Ok(o) if o.stdout == b"jailed\n" => {}
        o => {
            eprintln!("vm-init session: chroot cat gave {o:?}");
            std::process::exit(4);
        }
    }
    let err = Command::new("/bin/workload")
        .args([
            "--ids",
            "7005:7005",
            &format!("chdir:{WORK}"),
            "open:notes.txt",
            "open:/tmp/secret",
            "open:/nonexistent/x",
        ])
        .args(["connect:127.0.0.1:9", "exec-n:1:/nonexistent/prog", "exec-n:1:/bin/true", "--"])
        .args(ECHO_ARGV.iter().map(|a| OsStr::from_bytes(a)))
        .exec();
    eprintln!("vm-init session: exec workload: {err}");
    std::process::exit(5)
}

/// Collects check results: a failure names what was expected and what came.
struct Checks {
    n: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        self.n += 1;
        if !ok {
            let d = detail();
            eprintln!("vm-init: CHECK FAILED: {what}: {d}");
            self.failed.push(what.to_string());
        }
    }

    /// The event of `kind` matching `pred`, counted as a check.
    fn find<'a>(
        &mut self,
        events: &'a [Value],
        what: &str,
        kind: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        let e = events.iter().find(|e| e["event"] == kind && pred(e));
        self.check(what, e.is_some(), || "no such event".into());
        e
    }

    /// Each `(field, want)` of `e` equals, one check each.
    fn fields(&mut self, what: &str, e: Option<&Value>, want: &[(&str, Value)]) {
        let Some(e) = e else { return };
        for (k, v) in want {
            self.check(&format!("{what}: {k}"), &e[*k] == v, || format!("want {v}, got {} in {e}", e[*k]));
        }
    }
}

fn run(args: &[&str]) -> Result<std::process::Output, String> {
    let t = Instant::now();
    // TRACER_DEBUG: per-program load times, the first thing to look at when a kernel
    // rejects a program.
    let out = Command::new("/bin/tracer")
        .args(args)
        .env("TRACER_DEBUG", "1")
        .output()
        .map_err(|e| format!("run tracer: {e}"))?;
    eprintln!("vm-init: tracer {} took {:.1}s, {}", args[0], t.elapsed().as_secs_f64(), out.status);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(out)
}

fn run_checks() -> Result<usize, String> {
    let mut c = Checks { n: 0, failed: Vec::new() };
    let tracefs = "/sys/kernel/tracing/events";
    c.check("tracefs absent before the tracer runs", !std::path::Path::new(tracefs).exists(), || {
        "already mounted".into()
    });
    let out = run(&["trace", "--format", "json", "--output", EVENTS, "--", "/init", "session"])?;
    c.check("the tracer mounted tracefs", std::path::Path::new(tracefs).exists(), || "no tracefs after the run".into());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("tracer trace failed ({}): {last}", out.status));
    }
    c.check("nothing lost", stderr.contains(" 0 lost"), || stderr.to_string());
    let events = parse_json_lines(&std::fs::read(EVENTS).map_err(|e| format!("read {EVENTS}: {e}"))?);
    eprintln!("vm-init: {} events", events.len());
    trace_checks(&mut c, &events);
    if Command::new("/bin/tracer").args(["report", "--help"]).output().is_ok_and(|o| o.status.success()) {
        report_checks(&mut c)?;
    } else {
        eprintln!("vm-init: this tracer has no `report`: skipped");
    }
    guard_checks(&mut c)?;
    rules::checks(&mut c)?;
    if Command::new("/bin/tracer").args(["protect", "--help"]).output().is_ok_and(|o| o.status.success()) {
        protect::checks(&mut c)?;
    }
    if Command::new("/bin/tracer").args(["ci", "--help"]).output().is_ok_and(|o| o.status.success()) {
        ci_checks(&mut c)?;
    }
    if c.failed.is_empty() {
        Ok(c.n)
    } else {
        eprintln!("vm-init: events:\n{}", String::from_utf8_lossy(&std::fs::read(EVENTS).unwrap_or_default()));
        Err(format!("{} of {} checks failed: {}", c.failed.len(), c.n, c.failed.join(", ")))
    }
}

/// The guard's kernel source (the sshd message capture and the fd walk to the connection's
/// socket) is verified by this kernel: `guard run` loads and attaches its programs before it
/// touches a firewall. The guest has no nft, so the run then stops at the firewall; what is
/// checked is that both programs attached and that the failure is the firewall's.
fn guard_checks(c: &mut Checks) -> Result<(), String> {
    const JAIL: &str = "/tmp/jail.local";
    std::fs::write(JAIL, "[sshd]\nenabled = true\n").map_err(|e| format!("write {JAIL}: {e}"))?;
    let out = run(&["guard", "run", "--config", JAIL, "--state", "/tmp/guard.sqlite3", "--sshd-exe", "/bin/busybox"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for prog in ["raw_sys_enter", "raw_sys_exit", "exit_accept"] {
        c.check(
            &format!("guard: {prog} verified and attached"),
            stderr.contains(&format!("loaded and attached {prog} ")),
            || stderr.to_string(),
        );
    }
    c.check("guard: stopped at the missing firewall, not at the kernel", stderr.contains("nft"), || stderr.to_string());
    Ok(())
}

/// `tracer ci`'s kernel programs (process exit status, TCP connect outcome, DNS and listen
/// at syscall exit) pass this kernel's verifier, and a job's statuses come back.
fn ci_checks(c: &mut Checks) -> Result<(), String> {
    const JSON: &str = "/tmp/ci.json";
    let out = run(&["ci", "--json", JSON, "--", "/bin/busybox", "sh", "-c", "/bin/busybox false; exit 4"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    c.check("ci: the job's exit status", out.status.code() == Some(4), || format!("{}: {stderr}", out.status));
    for prog in ["raw_sys_exit", "exit_open", "exit_connect", "exit_exec", "exit_dns", "exit_listen", "conn_state"] {
        c.check(
            &format!("ci: {prog} verified and attached"),
            stderr.contains(&format!("loaded and attached {prog} ")),
            || stderr.to_string(),
        );
    }
    let j: Value = serde_json::from_slice(&std::fs::read(JSON).map_err(|e| format!("read {JSON}: {e}"))?)
        .map_err(|e| format!("{JSON}: {e}"))?;
    let statuses: Vec<Value> =
        j["processes"].as_array().map_or_else(Vec::new, |p| p.iter().map(|p| p["status"].clone()).collect());
    c.check("ci: exit statuses from the kernel", statuses == [Value::from(4), Value::from(1)], || j.to_string());
    Ok(())
}

fn trace_checks(c: &mut Checks, ev: &[Value]) {
    use serde_json::json;
    let login = |uid: u32| [("auid", json!(7005)), ("uid", json!(uid)), ("euid", json!(uid)), ("gid", json!(uid))];
    let uid7005 = login(7005);
    let root = login(0);

    // The session before it set its login UID: unset, and a number once set.
    let e = c.find(ev, "exec of the session", "exec", |e| e["argv"] == json!(["/init", "session"]));
    c.fields(
        "session exec",
        e,
        &[("auid", json!("unset")), ("ret", json!(0)), ("chrooted", json!(false)), ("root", json!("/"))],
    );

    // chroot(8) itself is not chrooted; the busybox it runs is, and sees its own paths.
    let e = c.find(ev, "exec of chroot", "exec", |e| e["filename"] == "/bin/chroot");
    c.fields("chroot exec", e, &root);
    c.fields(
        "chroot exec",
        e,
        &[
            ("argv", json!(["/bin/chroot", JAIL, "/bin/busybox", "cat", "/etc/hostname"])),
            ("chrooted", json!(false)),
            ("root", json!("/")),
        ],
    );
    let e = c.find(ev, "exec in the jail", "exec", |e| e["filename"] == "/bin/busybox");
    c.fields("jailed exec", e, &root);
    c.fields(
        "jailed exec",
        e,
        &[
            ("chrooted", json!(true)),
            ("root", json!(JAIL)),
            ("exe", json!(format!("{JAIL}/bin/busybox"))),
            ("argv", json!(["/bin/busybox", "cat", "/etc/hostname"])),
        ],
    );
    let e = c.find(ev, "open in the jail", "open", |e| e["name"] == "/etc/hostname");
    c.fields(
        "jailed open",
        e,
        &[
            ("path", json!("/etc/hostname")),
            ("host_path", json!(format!("{JAIL}/etc/hostname"))),
            ("chrooted", json!(true)),
            ("root", json!(JAIL)),
            ("error", Value::Null),
        ],
    );

    // The workload, as uid 7005: a relative open made absolute, failures with errno.
    let e = c.find(ev, "relative open", "open", |e| e["name"] == "notes.txt");
    c.fields("relative open", e, &uid7005);
    c.fields(
        "relative open",
        e,
        &[("path", json!(format!("{WORK}/notes.txt"))), ("error", Value::Null), ("comm", json!("workload"))],
    );
    let e = c.find(ev, "open of the secret", "open", |e| e["path"] == "/tmp/secret");
    c.fields("secret open", e, &uid7005);
    c.fields("secret open", e, &[("error", json!("EACCES")), ("ret", json!(-13))]);
    let e = c.find(ev, "open of a missing file", "open", |e| e["path"] == "/nonexistent/x");
    c.fields("missing open", e, &[("error", json!("ENOENT")), ("ret", json!(-2))]);
    let e = c.find(ev, "connect to a closed port", "connect", |e| e["port"] == 9);
    c.fields("connect", e, &uid7005);
    c.fields(
        "connect",
        e,
        &[
            ("family", json!("inet")),
            ("address", json!("127.0.0.1")),
            ("error", json!("ECONNREFUSED")),
            ("ret", json!(-111)),
        ],
    );
    let e = c.find(ev, "failed exec", "exec", |e| e["filename"] == "/nonexistent/prog");
    c.fields("failed exec", e, &uid7005);
    c.fields(
        "failed exec",
        e,
        &[
            ("error", json!("ENOENT")),
            ("ret", json!(-2)),
            ("argv", json!(["/nonexistent/prog"])),
            ("comm", json!("workload")),
        ],
    );
    let e = c.find(ev, "exec of true", "exec", |e| e["filename"] == "/bin/true");
    c.fields("true exec", e, &uid7005);
    c.fields(
        "true exec",
        e,
        &[("ret", json!(0)), ("argv", json!(["/bin/true"])), ("comm", json!("true")), ("exe", json!("/bin/busybox"))],
    );
    let e = c.find(ev, "exec of echo", "exec", |e| e["filename"] == "/bin/echo");
    c.fields("echo exec", e, &uid7005);
    if let Some(e) = e {
        let argv: Vec<Vec<u8>> = e["argv"].as_array().map(|a| a.iter().map(bytes_of).collect()).unwrap_or_default();
        c.check("echo argv byte for byte", argv == ECHO_ARGV.map(<[u8]>::to_vec), || format!("{e}"));
        c.fields("echo exec", Some(e), &[("cwd", json!(WORK)), ("argv_truncated", json!(false))]);
    }

    // Every event after the login carries it, with a session number.
    let after: Vec<&Value> = ev.iter().filter(|e| e["auid"] != "unset").collect();
    c.check("events after the login", after.len() >= 10, || format!("{} events", after.len()));
    for e in after {
        let ok = e["auid"] == 7005
            && e["ses"].is_u64()
            && e["mntns"].as_u64().is_some_and(|n| n > 0)
            && e["time"].as_str().is_some_and(|t| t.ends_with('Z'));
        c.check("identity of every event", ok, || format!("{e}"));
    }
}

/// `tracer report` of the same session, live: the per-UID summary and the in-kernel
/// syscall counts (one more program, raw_syscalls/sys_enter, on this kernel).
fn report_checks(c: &mut Checks) -> Result<(), String> {
    // --output: the session's own stdout (echo) goes to stdout too.
    let out = run(&["report", "--format", "json", "--auid", "7005", "--output", REPORT, "--", "/init", "session"])?;
    c.check("report exit status", out.status.success(), || format!("{}", out.status));
    let raw = std::fs::read(REPORT).unwrap_or_default();
    // One line with --auid; parse_json_lines also takes the `\udcXX` escapes of bytes that are not UTF-8.
    let Some(r) = parse_json_lines(&raw).into_iter().next() else {
        c.check("report written", false, || format!("{REPORT} is empty"));
        return Ok(());
    };
    let r = if r.is_array() {
        r.as_array().and_then(|a| a.iter().find(|u| u["auid"] == 7005)).cloned().unwrap_or(Value::Null)
    } else {
        r
    };
    c.check("report of auid 7005", r["auid"] == 7005, || format!("{r}"));
    let has = |list: &str, f: &dyn Fn(&Value) -> bool| r[list].as_array().is_some_and(|a| a.iter().any(f));
    c.check("report: echo command", has("commands", &|x| x["argv"][0] == "/bin/echo" && x["count"] == 1), || {
        format!("{r}")
    });
    c.check(
        "report: failed exec",
        has("commands", &|x| x["argv"][0] == "/nonexistent/prog" && x["failed"] == 1),
        || format!("{r}"),
    );
    c.check(
        "report: notes file",
        has("files", &|x| x["path"] == format!("{WORK}/notes.txt") && x["failed"] == 0),
        || format!("{r}"),
    );
    c.check("report: secret refused", has("files", &|x| x["path"] == "/tmp/secret" && x["failed"] == 1), || {
        format!("{r}")
    });
    c.check(
        "report: connection",
        has("connections", &|x| x["address"] == "127.0.0.1" && x["port"] == 9 && x["failed"] == 1),
        || format!("{r}"),
    );
    c.check(
        "report: syscall counts",
        has("syscalls", &|x| {
            x["syscall"] == "connect"
                && x["nr"] == 42
                && x["arch"] == "x86_64"
                && x["count"].as_u64().is_some_and(|n| n >= 1)
        }),
        || format!("{}", r["syscalls"]),
    );
    Ok(())
}
