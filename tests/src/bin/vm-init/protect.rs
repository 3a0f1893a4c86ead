//! `tracer protect --enforce` in the guest, booted with `lsm=...,bpf`: a private key of uid
//! 7005 and an agent of uid 7005 (this program: `/init agent SOCK`), root as the thief.
//! busybox cat stands for the stealer, `/init read` (allowed with --allow) for ssh-keygen,
//! `/init connect` for ssh-add -l.

use std::{
    io::Read as _,
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tracer_tests::parse_json_lines;

use super::Checks;

const HOME: &str = "/home/u";
const KEY: &str = "/home/u/.ssh/id_ed25519";
const SOCK: &str = "/home/u/agent.sock";
/// A name for the agent that is gone by the time the tracer reads the event.
const LINK: &str = "/tmp/agent-link";
const OUT: &str = "/tmp/protect.json";
const ERR: &str = "/tmp/protect.err";
const UID: u32 = 7005;

/// Becomes uid 7005 with login UID 7005 (a login of that user).
fn become_user() -> Result<(), String> {
    std::fs::write("/proc/self/loginuid", UID.to_string()).map_err(|e| format!("loginuid: {e}"))?;
    // SAFETY: plain id changes of this process.
    let rc = unsafe { libc::setgid(UID) | libc::setuid(UID) };
    if rc != 0 {
        return Err(format!("setuid: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `/init agent|read|connect|connect-as-user ARG`: the guest's helper roles; never return.
pub(crate) fn role(args: &[String]) -> ! {
    let r = match (args[0].as_str(), args.get(1)) {
        ("agent", Some(sock)) => become_user().and_then(|()| {
            let l = UnixListener::bind(sock).map_err(|e| format!("bind {sock}: {e}"))?;
            for c in l.incoming() {
                drop(c);
            }
            Ok(())
        }),
        ("read", Some(p)) => {
            let mut s = String::new();
            std::fs::File::open(p)
                .and_then(|mut f| f.read_to_string(&mut s))
                .map(drop)
                .map_err(|e| format!("read {p}: {e}"))
        }
        ("connect", Some(sock)) => std::os::unix::net::UnixStream::connect(sock).map(drop).map_err(|e| format!("{e}")),
        ("connect-as-user", Some(sock)) => become_user()
            .and_then(|()| std::os::unix::net::UnixStream::connect(sock).map(drop).map_err(|e| format!("{e}"))),
        _ => Err(format!("unknown role {args:?}")),
    };
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn setup() -> std::io::Result<()> {
    std::fs::create_dir_all(format!("{HOME}/.ssh"))?;
    std::fs::write(
        KEY,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )?;
    std::fs::set_permissions(KEY, std::fs::Permissions::from_mode(0o600))?;
    for p in [HOME, &format!("{HOME}/.ssh"), KEY] {
        std::os::unix::fs::chown(p, Some(UID), Some(UID))?;
    }
    Ok(())
}

fn out_of(c: &mut Command) -> (bool, String) {
    match c.output() {
        Ok(o) => (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => (false, e.to_string()),
    }
}

pub(crate) fn checks(c: &mut Checks) -> Result<(), String> {
    setup().map_err(|e| format!("protect setup: {e}"))?;
    let mut agent = Command::new("/init").args(["agent", SOCK]).spawn().map_err(|e| format!("agent: {e}"))?;
    let start = Instant::now();
    while !std::path::Path::new(SOCK).exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = std::fs::File::create(ERR).map_err(|e| e.to_string())?;
    let mut tracer = Command::new("/bin/tracer")
        .args(["protect", "--enforce", "--format", "json", "--output", OUT, "--home", HOME])
        .args(["--no-default-allow", "--allow", "/init", "--agent-exe", "/init"])
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("tracer protect: {e}"))?;
    let stderr = || std::fs::read_to_string(ERR).unwrap_or_default();
    let start = Instant::now();
    while !stderr().contains("tracer: protecting") {
        if let Ok(Some(st)) = tracer.try_wait() {
            let _ = agent.kill();
            return Err(format!("tracer protect --enforce exited {st}: {}", stderr()));
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("tracer protect --enforce never started: {}", stderr()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprint!("{}", stderr());
    c.check("protect found the key and the agent", stderr().contains("1 keys and 1 agents"), stderr);

    let (ok, e) = out_of(Command::new("/bin/busybox").args(["cat", KEY]).stdout(Stdio::null()));
    c.check("root's cat of the user's key fails with EPERM", !ok && e.contains("not permitted"), || e.clone());
    let (ok, e) = out_of(Command::new("/init").args(["read", KEY]));
    c.check("the allowed reader still reads the key", ok, || e.clone());
    let (ok, e) = out_of(Command::new("/init").args(["connect", SOCK]));
    c.check("root's connect to the user's agent fails with EPERM", !ok && e.contains("not permitted"), || e.clone());
    let (ok, e) = out_of(Command::new("/init").args(["connect-as-user", SOCK]));
    c.check("the agent owner's own connect works", ok, || e.clone());
    // The agent a denied connect reached comes from the LSM program, not from the name: a
    // link removed before the tracer reads the event (stopped meanwhile) still names it.
    let _ = std::fs::remove_file(LINK);
    std::os::unix::fs::symlink(SOCK, LINK).map_err(|e| format!("symlink {LINK}: {e}"))?;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGSTOP) };
    let (ok, e) = out_of(Command::new("/init").args(["connect", LINK]));
    let _ = std::fs::remove_file(LINK);
    // SAFETY: as above.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGCONT) };
    c.check("root's connect through a link is denied too", !ok && e.contains("not permitted"), || e.clone());
    std::thread::sleep(Duration::from_millis(300));

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let st = tracer.wait().map_err(|e| e.to_string())?;
    let _ = agent.kill();
    let _ = agent.wait();
    c.check("tracer protect stops cleanly", st.success(), || format!("{st}: {}", stderr()));
    let ev = parse_json_lines(&std::fs::read(OUT).unwrap_or_default());
    eprintln!("vm-init: protect events: {ev:?}");
    let key =
        c.find(&ev, "the key denial is an event", "open", |e| e["key"] == "ssh-key" && e["exe"] == "/bin/busybox");
    c.fields(
        "key denial",
        key,
        &[("denied", json!(true)), ("error", json!("EPERM")), ("uid", json!(0)), ("owner_uid", json!(UID))],
    );
    let agent_ev =
        c.find(&ev, "the agent denial is an event", "connect", |e| e["key"] == "ssh-agent" && e["path"] == SOCK);
    let linked = c.find(&ev, "the denial through a link is an event", "connect", |e| {
        e["key"] == "ssh-agent" && e["path"] == LINK
    });
    c.fields(
        "denial through a removed link names the agent",
        linked,
        &[("target", json!(SOCK)), ("owner_uid", json!(UID))],
    );
    c.fields(
        "agent denial",
        agent_ev,
        &[("denied", json!(true)), ("error", json!("EPERM")), ("uid", json!(0)), ("owner_uid", json!(UID))],
    );
    let quiet = |e: &Value| e["uid"] == UID || e["exe"] == "/init" && e["key"] == "ssh-key";
    c.check("nothing reported for the allowed reader or the owner", !ev.iter().any(quiet), || format!("{ev:?}"));
    Ok(())
}
