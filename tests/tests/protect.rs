//! `tracer protect` against the real kernel, OpenSSH's real ssh-keygen, ssh-add and
//! ssh-agent, and the stealers an attacker would try: cat, a copy of cat named ssh-keygen,
//! links to the key, a renamed key, a key named by its content only, root on the user's agent.

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{TempDir, parse_json_lines, tracer_bin};

mod guard_env;

/// The account the tests' keys and agents belong to (ssh-keygen and ssh-add need a passwd entry).
const USER: &str = "tracer-protect";

fn user() -> (u32, u32) {
    let ok = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output().unwrap();
    if !ok(&["id", "-u", USER]).status.success() {
        // Several tests may race to create it: one wins, the others see it exists.
        let _ = ok(&["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
    }
    let num = |flag: &str| String::from_utf8(ok(&["id", flag, USER]).stdout).unwrap().trim().parse::<u32>().unwrap();
    (num("-u"), num("-g"))
}

/// A home with `.ssh/id_ed25519` (and its .pub) made by the real ssh-keygen, owned by the user.
struct Home {
    dir: TempDir,
    uid: u32,
    gid: u32,
}

impl Home {
    fn new(tag: &str) -> Self {
        let (uid, gid) = user();
        let dir = TempDir::new(tag);
        let h = Home { dir, uid, gid };
        let ssh = h.ssh();
        std::fs::create_dir(&ssh).unwrap();
        std::os::unix::fs::chown(&ssh, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
        h.as_user(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", h.key().to_str().unwrap()]);
        h
    }
    fn ssh(&self) -> PathBuf {
        self.dir.file(".ssh")
    }
    fn key(&self) -> PathBuf {
        self.ssh().join("id_ed25519")
    }
    /// The user's command, with its own login UID (a new audit session), like a login would.
    fn user_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo {uid} > /proc/self/loginuid && exec setpriv --reuid {uid} --regid {gid} --clear-groups \"$@\"",
                uid = self.uid,
                gid = self.gid
            ))
            .arg("sh")
            .args(args)
            .env("HOME", self.dir.path());
        c
    }
    fn as_user(&self, args: &[&str]) -> String {
        let o = self.user_cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// A running `tracer protect --format json`.
struct Protect {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _files: TempDir,
}

impl Protect {
    fn start(home: &Home, extra: &[&str]) -> Self {
        let files = TempDir::new("protect-out");
        let (out, err) = (files.file("events.json"), files.file("stderr"));
        let child = Command::new(tracer_bin())
            .args(["protect", "--format", "json", "--rescan", "200ms", "--output"])
            .arg(&out)
            .arg("--home")
            .arg(home.dir.path())
            .args(extra)
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let p = Protect { child, out, err, _files: files };
        p.wait_stderr("tracer: protecting");
        p
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
    fn wait_stderr(&self, what: &str) {
        let start = Instant::now();
        while !self.stderr().contains(what) {
            assert!(start.elapsed() < Duration::from_secs(60), "tracer protect never said {what:?}: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn events(&self) -> Vec<Value> {
        parse_json_lines(&std::fs::read(&self.out).unwrap_or_default())
    }
    /// Runs `act` until an event `pick` accepts appears (a key or agent found by a rescan
    /// needs one rescan first), at most 30 s.
    fn until(&self, mut act: impl FnMut(), pick: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            act();
            std::thread::sleep(Duration::from_millis(100));
            if let Some(e) = self.events().into_iter().find(&pick) {
                return e;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no such event; got {:#?}", self.events());
        }
    }
    fn stop(mut self) -> (Vec<Value>, String) {
        // SAFETY: kill(2) on the child this struct spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tracer protect: {status}: {}", self.stderr());
        (self.events(), self.stderr())
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().map(str::to_string).unwrap_or_else(|| v[k].to_string())
}

fn about(events: &[Value], key: &str, target: &Path) -> Vec<Value> {
    events.iter().filter(|e| e["key"] == key && s(e, "target") == target.to_str().unwrap()).cloned().collect()
}

#[test]
fn cat_of_a_key_is_reported_and_ssh_keygen_is_not() {
    let home = Home::new("protect-cat");
    let p = Protect::start(&home, &[]);
    let key = home.key();
    let k = key.to_str().unwrap();
    // The kernel filters without waiting for user space: both run before the stop.
    let public = home.as_user(&["ssh-keygen", "-y", "-f", k]);
    assert!(public.starts_with("ssh-ed25519 "), "ssh-keygen read the key: {public}");
    home.as_user(&["cat", k]);
    // O_PATH opens nothing to read: not reported.
    home.as_user(&["/usr/bin/python3", "-c", "import os,sys; os.close(os.open(sys.argv[1], os.O_PATH))", k]);
    let (events, stderr) = p.stop();
    let hits = about(&events, "ssh-key", &key);
    assert_eq!(hits.len(), 1, "exactly cat's read: {hits:#?}\n{stderr}");
    let e = &hits[0];
    assert_eq!(e["comm"], "cat");
    assert_eq!(e["exe"], "/usr/bin/cat");
    assert_eq!(e["argv"], serde_json::json!(["cat", k]));
    assert_eq!(e["uid"], home.uid);
    assert_eq!(e["auid"], home.uid);
    assert!(e["ses"].is_number(), "{e}");
    assert_eq!(e["owner_uid"], home.uid);
    assert_eq!(e["event"], "open");
    assert!(e["tree"].as_array().is_some_and(|t| !t.is_empty()), "the reader's ancestors: {e}");
    assert!(!events.iter().any(|e| s(e, "comm").starts_with("ssh-keygen")), "ssh-keygen is allowed: {events:#?}");
}

#[test]
fn stealers_disguised_or_through_links_are_reported() {
    let home = Home::new("protect-steal");
    let key = home.key();
    // Found by content: no id_ prefix.
    let by_content = home.ssh().join("work-laptop");
    std::fs::copy(&key, &by_content).unwrap();
    std::os::unix::fs::chown(&by_content, Some(home.uid), Some(home.gid)).unwrap();
    let p = Protect::start(&home, &[]);
    let tools = TempDir::new("protect-tools");
    // A copy of cat named ssh-keygen, even root-owned: another inode, not OpenSSH's.
    let fake = tools.file("ssh-keygen");
    std::fs::copy("/usr/bin/cat", &fake).unwrap();
    let links = home.dir.file("links");
    std::fs::create_dir(&links).unwrap();
    std::os::unix::fs::chown(&links, Some(home.uid), Some(home.gid)).unwrap();
    let (sym, hard) = (links.join("sym"), links.join("hard"));
    home.as_user(&["ln", "-s", key.to_str().unwrap(), sym.to_str().unwrap()]);
    home.as_user(&["ln", key.to_str().unwrap(), hard.to_str().unwrap()]);
    home.as_user(&[fake.to_str().unwrap(), key.to_str().unwrap()]);
    home.as_user(&["cat", sym.to_str().unwrap()]);
    home.as_user(&["cat", hard.to_str().unwrap()]);
    home.as_user(&["cat", by_content.to_str().unwrap()]);
    // Renamed after the scan: the inode is still protected.
    let renamed = home.ssh().join("innocent.txt");
    std::fs::rename(&key, &renamed).unwrap();
    home.as_user(&[
        "sh",
        "-c",
        &format!("cd {} && exec dd if=innocent.txt of=/dev/null status=none", home.ssh().display()),
    ]);
    // A key written after the start is found by a rescan.
    let new_key = home.ssh().join("id_new");
    home.as_user(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", new_key.to_str().unwrap()]);
    let nk = new_key.to_str().unwrap().to_string();
    p.until(|| drop(home.as_user(&["head", "-c1", &nk])), |e| e["key"] == "ssh-key" && s(e, "target") == nk);
    let (events, _) = p.stop();
    let reads: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["key"] == "ssh-key" && e["uid"] == home.uid)
        .map(|e| (s(e, "exe"), s(e, "path"), s(e, "target")))
        .collect();
    let k = key.to_str().unwrap().to_string();
    let expect = [
        (fake.to_str().unwrap().to_string(), k.clone(), k.clone()),
        ("/usr/bin/cat".into(), sym.to_str().unwrap().into(), k.clone()),
        ("/usr/bin/cat".into(), hard.to_str().unwrap().into(), k.clone()),
        ("/usr/bin/cat".into(), by_content.to_str().unwrap().into(), by_content.to_str().unwrap().into()),
    ];
    for x in &expect {
        assert!(reads.contains(x), "missing {x:?} in {reads:#?}");
    }
    // The renamed key: its inode is protected; the target is its name at the last scan.
    let r = renamed.to_str().unwrap();
    assert!(reads.iter().any(|(exe, path, t)| exe == "/usr/bin/dd" && path == r && (*t == k || t == r)), "{reads:#?}");
    assert!(reads.iter().any(|(exe, _, t)| exe == "/usr/bin/head" && *t == nk), "{reads:#?}");
    assert!(
        !reads.iter().any(|(exe, _, _)| exe == "/usr/bin/ssh-keygen"),
        "the real ssh-keygen is allowed: {reads:#?}"
    );
}

/// `ssh-agent -D -a SOCK` as the user (foreground: its pid is ours to end), with the key added.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(home: &Home) -> Self {
        let sock = home.dir.file("agent.sock");
        let child = home
            .user_cmd(&["ssh-agent", "-D", "-a", sock.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !sock.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let a = Agent { child, sock };
        let add =
            home.user_cmd(&["ssh-add", home.key().to_str().unwrap()]).env("SSH_AUTH_SOCK", &a.sock).output().unwrap();
        assert!(add.status.success(), "ssh-add: {}", String::from_utf8_lossy(&add.stderr));
        a
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn root_on_the_users_agent_is_reported_the_users_own_use_is_not() {
    let home = Home::new("protect-agent");
    let agent = Agent::start(&home);
    let p = Protect::start(&home, &[]);
    let sock = agent.sock.to_str().unwrap();
    let list = |c: &mut Command| {
        let o = c.env("SSH_AUTH_SOCK", sock).output().unwrap();
        assert!(o.status.success(), "ssh-add -l: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(list(home.user_cmd(&["ssh-add", "-l"]).env("SSH_AUTH_SOCK", sock)).contains("ED25519"));
    assert!(list(Command::new("ssh-add").arg("-l")).contains("ED25519"), "root can use the user's agent");
    // A relative name from the socket's directory reaches the same agent.
    let o = Command::new("ssh-add").arg("-l").current_dir(home.dir.path()).env("SSH_AUTH_SOCK", "agent.sock").output();
    assert!(o.unwrap().status.success());
    let (events, stderr) = p.stop();
    let hits = about(&events, "ssh-agent", &agent.sock);
    assert_eq!(hits.len(), 2, "root's two ssh-add -l, not the user's: {hits:#?}\n{stderr}");
    for e in &hits {
        assert_eq!(e["uid"], 0);
        assert_eq!(e["comm"], "ssh-add");
        assert_eq!(e["owner_uid"], home.uid);
        assert_eq!(e["argv"], serde_json::json!(["ssh-add", "-l"]));
        assert!(s(e, "reason").contains(&format!("uid 0 is not the agent owner's {}", home.uid)), "{e}");
    }
    assert_eq!(s(&hits[1], "path"), "agent.sock", "the name as given");
    assert!(!events.iter().any(|e| e["key"] == "ssh-agent" && e["uid"] == home.uid), "{events:#?}");
    // The agent itself is owned by the user and was found by its listener.
    assert_eq!(std::fs::metadata(&agent.sock).unwrap().uid(), home.uid);
}

#[test]
fn check_lists_keys_agents_allow_list_and_enforcement() {
    let home = Home::new("protect-check");
    let agent = Agent::start(&home);
    let o = Command::new(tracer_bin()).args(["protect", "--check", "--home"]).arg(home.dir.path()).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{} (owner uid {}", home.key().display(), home.uid)), "{text}");
    assert!(!text.contains("id_ed25519.pub"), "{text}");
    assert!(
        text.contains(&format!("{} (ssh-agent, pid {}, uid {}", agent.sock.display(), agent.child.id(), home.uid)),
        "{text}"
    );
    assert!(text.contains("/usr/bin/ssh-keygen (inode"), "{text}");
    assert!(text.contains("enforcement: "), "{text}");
}

#[test]
fn bad_allow_list_entries_are_refused() {
    let dir = TempDir::new("protect-allow");
    let writable = dir.file("tool");
    std::fs::copy("/usr/bin/true", &writable).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777)).unwrap();
    for (arg, msg) in
        [(writable.to_str().unwrap(), "writable by group or others"), ("/nonexistent/ssh", "No such file")]
    {
        let o = Command::new(tracer_bin()).args(["protect", "--check", "--allow", arg]).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(arg) && err.contains(msg), "{err}");
    }
}

/// Where the kernel refuses BPF LSM programs (this machine: EPERM at load), `--enforce`
/// exits 2 naming the refused program and the reason, and alert mode still runs; where it
/// accepts them, the stealer's open fails with EPERM, ssh-keygen still reads the key and the
/// denial is an event.
#[test]
fn enforce_denies_or_exits_2_naming_why() {
    let home = Home::new("protect-enforce");
    let check = Command::new(tracer_bin()).args(["protect", "--check"]).output().unwrap();
    let check = String::from_utf8_lossy(&check.stdout).into_owned();
    let key = home.key();
    let k = key.to_str().unwrap();
    if let Some(why) = check.lines().find_map(|l| l.strip_prefix("enforcement: unavailable: ")) {
        let o = Command::new(tracer_bin())
            .args(["protect", "--enforce", "--duration", "30s", "--home"])
            .arg(home.dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--enforce: ") && err.contains(why) && err.contains("alert mode"), "{err}\n{why}");
        assert!(!err.contains("tracer: protecting"), "nothing half-applied: {err}");
        // Alert mode runs on the same machine.
        let p = Protect::start(&home, &[]);
        let start = Instant::now();
        home.as_user(&["cat", k]);
        let (events, _) = p.stop();
        let hits = about(&events, "ssh-key", &key);
        assert!(hits.len() == 1 && hits[0]["denied"] == false, "{hits:#?} ({:?})", start.elapsed());
        return;
    }
    assert!(check.contains("enforcement: available"), "{check}");
    let p = Protect::start(&home, &["--enforce"]);
    let stolen = home.user_cmd(&["cat", k]).output().unwrap();
    assert!(!stolen.status.success());
    assert!(String::from_utf8_lossy(&stolen.stderr).contains("Operation not permitted"), "{stolen:?}");
    assert!(home.as_user(&["ssh-keygen", "-y", "-f", k]).starts_with("ssh-ed25519 "));
    let (events, _) = p.stop();
    let hits = about(&events, "ssh-key", &key);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["denied"], true);
    assert_eq!(hits[0]["error"], "EPERM");
    assert_eq!(hits[0]["comm"], "cat");
}

/// Text and audit.log output carry the key too; a write-only open (creat) of a key is not a read.
#[test]
fn text_and_audit_formats_carry_the_key() {
    let home = Home::new("protect-formats");
    let key = home.key();
    let k = key.to_str().unwrap();
    for (format, want) in [("text", "ssh-key "), ("audit", "key=\"ssh-key\"")] {
        let files = TempDir::new("protect-fmt");
        let out = files.file("out");
        let err = files.file("err");
        let mut child = Command::new(tracer_bin())
            .args(["protect", "--format", format, "--output"])
            .arg(&out)
            .arg("--home")
            .arg(home.dir.path())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !std::fs::read_to_string(&err).unwrap_or_default().contains("tracer: protecting") {
            assert!(start.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(50));
        }
        home.as_user(&["cat", k]);
        // Write-only (no read of the secret): not reported.
        home.as_user(&["sh", "-c", &format!("true >> {k}")]);
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        assert!(child.wait().unwrap().success());
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(want)).collect();
        match format {
            "text" => {
                let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(&format!("uid={}", home.uid))).collect();
                assert_eq!(mine.len(), 1, "{text}");
                assert!(mine[0].contains("comm=\"cat\"") && mine[0].contains(&format!("target=\"{k}\"")), "{text}");
            }
            _ => {
                let mine: Vec<&&str> = lines
                    .iter()
                    .filter(|l| l.starts_with("type=SYSCALL") && l.contains(&format!(" uid={} ", home.uid)))
                    .collect();
                assert_eq!(mine.len(), 1, "{text}");
                assert!(mine[0].contains("comm=\"cat\""), "{text}");
            }
        }
    }
}

/// With --agent-session, the owner's own ssh-add from another login session is reported too
/// (each `user_cmd` is a new login, so a new audit session); without it, it is not (above).
#[test]
fn agent_session_reports_the_owner_from_another_session() {
    let home = Home::new("protect-session");
    let agent = Agent::start(&home);
    let p = Protect::start(&home, &["--agent-session"]);
    let o = home.user_cmd(&["ssh-add", "-l"]).env("SSH_AUTH_SOCK", &agent.sock).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let (events, stderr) = p.stop();
    let hits: Vec<Value> =
        about(&events, "ssh-agent", &agent.sock).into_iter().filter(|e| e["uid"] == home.uid).collect();
    assert_eq!(hits.len(), 1, "{events:#?}\n{stderr}");
    let reason = s(&hits[0], "reason");
    assert!(reason.contains("session") && !reason.contains("uid"), "only the session differs: {reason}");
}

/// An agent forwarded by the real sshd (`ssh -A`): the socket sshd makes in /tmp/ssh-*/ is
/// found by its listener (an sshd binary, in the server's network namespace) and every
/// connect to it is reported, naming who connected.
#[test]
fn forwarded_agent_connects_are_reported() {
    use guard_env::{Netns, Sshd, sh};
    let home = Home::new("protect-fwd");
    // The account logs in by key with a shell; "*": no password, but not locked for sshd.
    sh(&["usermod", "-s", "/bin/sh", "-p", "*", USER]);
    let auth = home.ssh().join("authorized_keys");
    std::fs::copy(home.ssh().join("id_ed25519.pub"), &auth).unwrap();
    let agent = Agent::start(&home);
    let ns = Netns::new("pfwd");
    let dir = TempDir::new("protect-sshd");
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let extra = format!(
        "PubkeyAuthentication yes\nAuthorizedKeysFile {}\nStrictModes no\nAllowAgentForwarding yes\n",
        auth.display()
    );
    let _sshd = Sshd::start_with(&ns, &dir, "127.0.0.1", true, (&ns, lo), &extra);
    let p = Protect::start(&home, &[]);
    let ssh = |remote: &str| {
        let o = ns
            .command("setpriv")
            .args(["--reuid", &home.uid.to_string(), "--regid", &home.gid.to_string(), "--clear-groups"])
            .args(["ssh", "-A", "-p", "2222", "-i"])
            .arg(home.key())
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "LogLevel=ERROR", &format!("{USER}@127.0.0.1"), remote])
            .env("SSH_AUTH_SOCK", &agent.sock)
            .env("HOME", home.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The forwarded socket lives as long as the session: wait past a rescan before using it.
    let e = p.until(
        || assert!(ssh("sleep 0.5; ssh-add -l").contains("ED25519")),
        |e| e["key"] == "ssh-agent" && s(e, "target").starts_with("/tmp/ssh-"),
    );
    let _ = p.stop();
    assert_eq!(e["comm"], "ssh-add");
    assert_eq!(e["uid"], home.uid);
    assert_eq!(e["owner_uid"], home.uid);
    assert!(s(&e, "reason").contains("forwarded agent"), "{e}");
    assert!(s(&e, "target").contains("/agent."), "{e}");
}
