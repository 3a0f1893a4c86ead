//! The world `tracer protect` is tested in: a real account with a home made by the real
//! ssh-keygen, its ssh-agent, and the tracer as a child writing JSON lines to a file.
#![allow(dead_code, unreachable_pub)]

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{TempDir, parse_json_lines, tracer_bin};

/// The account the tests' keys and agents belong to (ssh-keygen and ssh-add need a passwd entry).
pub const USER: &str = "tracer-protect";

pub fn user() -> (u32, u32) {
    let ok = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output().unwrap();
    if !ok(&["id", "-u", USER]).status.success() {
        // Several tests may race to create it: one wins, the others see it exists.
        let _ = ok(&["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
    }
    let num = |flag: &str| String::from_utf8(ok(&["id", flag, USER]).stdout).unwrap().trim().parse::<u32>().unwrap();
    (num("-u"), num("-g"))
}

/// A home with `.ssh/id_ed25519` (and its .pub) made by the real ssh-keygen, owned by the user.
pub struct Home {
    pub dir: TempDir,
    pub uid: u32,
    pub gid: u32,
}

impl Home {
    pub fn new(tag: &str) -> Self {
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
    pub fn ssh(&self) -> PathBuf {
        self.dir.file(".ssh")
    }
    pub fn key(&self) -> PathBuf {
        self.ssh().join("id_ed25519")
    }
    /// The user's command, with its own login UID (a new audit session), like a login would.
    pub fn user_cmd(&self, args: &[&str]) -> Command {
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
    pub fn as_user(&self, args: &[&str]) -> String {
        let o = self.user_cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// A running `tracer protect --format json`.
pub struct Protect {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _files: TempDir,
}

impl Protect {
    pub fn start(home: &Home, extra: &[&str]) -> Self {
        Self::start_env(home, extra, &[])
    }

    /// `start` with environment variables for the tracer.
    pub fn start_env(home: &Home, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let files = TempDir::new("protect-out");
        let (out, err) = (files.file("events.json"), files.file("stderr"));
        let child = Command::new(tracer_bin())
            .args(["protect", "--format", "json", "--rescan", "200ms", "--output"])
            .arg(&out)
            .arg("--home")
            .arg(home.dir.path())
            .args(extra)
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let p = Protect { child, out, err, _files: files };
        p.wait_stderr("tracer: protecting");
        p
    }
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
    pub fn wait_stderr(&self, what: &str) {
        let start = Instant::now();
        while !self.stderr().contains(what) {
            assert!(start.elapsed() < Duration::from_secs(60), "tracer protect never said {what:?}: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    pub fn events(&self) -> Vec<Value> {
        parse_json_lines(&std::fs::read(&self.out).unwrap_or_default())
    }
    /// Runs `act` until an event `pick` accepts appears (a key or agent found by a rescan
    /// needs one rescan first), at most 30 s.
    pub fn until(&self, mut act: impl FnMut(), pick: impl Fn(&Value) -> bool) -> Value {
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
    /// Runs `act` with the tracer stopped (SIGSTOP): its events wait in the ring buffer, as
    /// behind a slow reader, so whatever `act` does after a call is done before it is read.
    pub fn paused<R>(&self, act: impl FnOnce() -> R) -> R {
        struct Resume(i32);
        impl Drop for Resume {
            fn drop(&mut self) {
                // SAFETY: kill(2) on the child this struct spawned and has not reaped.
                unsafe { libc::kill(self.0, libc::SIGCONT) };
            }
        }
        let pid = self.child.id() as i32;
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let _resume = Resume(pid);
        act()
    }
    pub fn stop(mut self) -> (Vec<Value>, String) {
        // SAFETY: kill(2) on the child this struct spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tracer protect: {status}: {}", self.stderr());
        (self.events(), self.stderr())
    }
}

pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str().map(str::to_string).unwrap_or_else(|| v[k].to_string())
}

pub fn about(events: &[Value], key: &str, target: &Path) -> Vec<Value> {
    events.iter().filter(|e| e["key"] == key && s(e, "target") == target.to_str().unwrap()).cloned().collect()
}

/// `ssh-agent -D -a SOCK` as the user (foreground: its pid is ours to end), with the key added.
pub struct Agent {
    pub child: Child,
    pub sock: PathBuf,
}

impl Agent {
    /// The user's `ssh-agent -D -a SOCK`, holding the user's key.
    pub fn start(home: &Home) -> Self {
        let sock = home.dir.file("agent.sock");
        let a = Self::spawn(&mut home.user_cmd(&["ssh-agent", "-D", "-a", sock.to_str().unwrap()]), &sock);
        let add =
            home.user_cmd(&["ssh-add", home.key().to_str().unwrap()]).env("SSH_AUTH_SOCK", &a.sock).output().unwrap();
        assert!(add.status.success(), "ssh-add: {}", String::from_utf8_lossy(&add.stderr));
        a
    }

    /// `ssh-agent -D -a SOCK` as root (this process's uid, login UID and session), no key.
    pub fn start_root(sock: &Path) -> Self {
        Self::spawn(Command::new("ssh-agent").args(["-D", "-a"]).arg(sock), sock)
    }

    /// Starts `cmd` (an ssh-agent listening on `sock`) and waits for the socket.
    fn spawn(cmd: &mut Command, sock: &Path) -> Self {
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let start = Instant::now();
        while !sock.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, sock: sock.to_path_buf() }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
