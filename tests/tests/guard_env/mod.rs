//! The world `tracer guard` is tested in: network namespaces joined by veth pairs (from
//! `tracer_tests::netns`, deleted on drop), a real OpenSSH sshd in one of them, sshpass + ssh
//! attackers in another, an rsyslogd for the syslog path, and the guard itself as a child
//! process whose stdout is watched. Everything started here is stopped by Drop, also when an
//! assertion fails.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr},
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tracer_tests::uniq;
pub use tracer_tests::{
    TempDir,
    netns::{Netns, ensure_packages, sh},
};

static SERIAL: Mutex<()> = Mutex::new(());

/// The kernel capture sees every sshd on the machine and the machine has few CPUs: the guard
/// tests run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pids of `pid`'s descendants, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        if let Some(pp) = rest.split_whitespace().nth(1).and_then(|x| x.parse::<u32>().ok()) {
            parent_of.push((p, pp));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c).collect::<Vec<_>>());
        i += 1;
    }
    out.remove(0);
    out
}

/// A child process killed with its whole tree on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill_tree(&mut self) {
        let pid = self.0.id();
        for d in descendants(pid) {
            // SAFETY: signalling pids found as this child's descendants.
            unsafe { libc::kill(d as i32, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_tree();
    }
}

/// A real OpenSSH sshd (`sshd -D`, stderr or syslog logging) listening on ADDR:2222 inside a
/// namespace, with password authentication and no PAM.
pub struct Sshd {
    pub proc: Proc,
    pub stderr_log: PathBuf,
    pub addr: SocketAddr,
}

pub const SSH_PORT: u16 = 2222;

impl Sshd {
    /// `stderr`: `sshd -D -e` (messages written to fd 2); else sshd logs with syslog(3).
    pub fn start(ns: &Netns, dir: &TempDir, listen: &str, stderr: bool, probe: (&Netns, IpAddr)) -> Sshd {
        Self::start_with(ns, dir, listen, stderr, probe, "")
    }

    /// `start` with `extra` sshd_config lines first (sshd takes a keyword's first value).
    pub fn start_with(
        ns: &Netns,
        dir: &TempDir,
        listen: &str,
        stderr: bool,
        probe: (&Netns, IpAddr),
        extra: &str,
    ) -> Sshd {
        Self::start_exe(ns, dir, listen, stderr, probe, extra, Path::new("/usr/sbin/sshd"))
    }

    /// `start_with` running the sshd binary at `exe`.
    pub fn start_exe(
        ns: &Netns,
        dir: &TempDir,
        listen: &str,
        stderr: bool,
        probe: (&Netns, IpAddr),
        extra: &str,
        exe: &Path,
    ) -> Sshd {
        let key = dir.file("host_ed25519");
        if !key.exists() {
            sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()]);
        }
        let conf = dir.file("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "{extra}Port {SSH_PORT}\nListenAddress {listen}\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication no\nUsePAM no\nPermitRootLogin no\n\
                 MaxAuthTries 6\nMaxStartups 100\nSyslogFacility AUTH\nLogLevel INFO\n",
                key.display(),
                dir.file("sshd.pid").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let stderr_log = dir.file("sshd.stderr");
        let mut cmd = ns.command(exe);
        cmd.arg("-D");
        if stderr {
            cmd.arg("-e");
        }
        cmd.arg("-f").arg(&conf);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("start sshd");
        let s = Sshd { proc: Proc(child), stderr_log, addr: SocketAddr::new(listen.parse().unwrap(), SSH_PORT) };
        assert!(
            probe.0.wait_connect(probe.1, s.addr, Ok(()), Duration::from_secs(10)),
            "sshd did not start: {}",
            s.stderr()
        );
        s
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// One password login attempt with a wrong password from `src` (in namespace `ns`); the
/// login fails, so the exit status is not looked at.
pub fn wrong_password(ns: &Netns, src: IpAddr, dst: SocketAddr, user: &str) {
    let _ = ns
        .command("sshpass")
        .args(["-p", "wrong-password", "ssh", "-F", "/dev/null", "-b", &src.to_string(), "-p", &dst.port().to_string()])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-l", user, &dst.ip().to_string(), "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Debian's python3-asyncssh, for a client that sends chosen hostbased `client host` and
/// `client user` strings (OpenSSH's ssh-keysign cannot be made to lie).
pub fn ensure_asyncssh() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let have =
            || Command::new("/usr/bin/python3").args(["-c", "import asyncssh"]).status().is_ok_and(|s| s.success());
        if !have() {
            let ok = Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends", "python3-asyncssh"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok && have(), "could not install python3-asyncssh");
        }
    });
}

const HOSTBASED_PY: &str = r#"
import asyncio, sys, warnings
warnings.filterwarnings("ignore")
import asyncssh
src, host, port, user, chost, cuser, key = sys.argv[1:8]
async def main():
    try:
        async with asyncssh.connect(host, port=int(port), local_addr=(src, 0), username=user,
                known_hosts=None, client_host_keys=[key], client_host=chost, client_username=cuser,
                preferred_auth="hostbased", agent_path=None, client_keys=None, password=None):
            pass
    except Exception as e:
        print(type(e).__name__, e)
asyncio.run(main())
"#;

/// One hostbased attempt from `src` whose `client host` / `client user` strings are the
/// client's choice; it fails (the key is known nowhere), so only sshd's log matters.
pub fn hostbased(ns: &Netns, dir: &TempDir, src: IpAddr, dst: SocketAddr, user: &str, chost: &str, cuser: &str) {
    ensure_asyncssh();
    let key = dir.file("client_host_ed25519");
    if !key.exists() {
        sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()]);
    }
    let out = ns
        .command("/usr/bin/python3")
        .args(["-c", HOSTBASED_PY, &src.to_string(), &dst.ip().to_string(), &dst.port().to_string(), user])
        .args([chost, cuser, key.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("PermissionDenied"), "hostbased attempt: {said}{}", String::from_utf8_lossy(&out.stderr));
}

/// `tracer guard run` inside a namespace, its stdout collected line by line.
pub struct GuardProc {
    pub proc: Proc,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub stderr_path: PathBuf,
}

impl GuardProc {
    pub fn start(ns: &Netns, dir: &TempDir, args: &[&str]) -> GuardProc {
        let n = uniq();
        let stderr_path = dir.file(&format!("guard-{n}.stderr"));
        let mut child = ns
            .command(tracer_tests::tracer_bin())
            .args(["guard", "run"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start tracer guard run");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        let g = GuardProc { proc: Proc(child), lines, stderr_path };
        assert!(
            g.wait(|l| l.contains("Jail 'sshd' started"), Duration::from_secs(30)),
            "guard did not start; stdout:\n{}\nstderr:\n{}",
            g.output(),
            g.stderr()
        );
        g
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a line ending with `suffix` (e.g. `] Ban 10.0.0.2`): true if it came.
    pub fn wait_line(&self, suffix: &str, within: Duration) -> bool {
        self.wait(|l| l.ends_with(suffix), within)
    }

    pub fn wait(&self, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
        let t = Instant::now();
        loop {
            if self.lines.lock().unwrap().iter().any(|l| pred(l)) {
                return true;
            }
            if t.elapsed() > within || self.proc_exited() {
                return self.lines.lock().unwrap().iter().any(|l| pred(l));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `n` lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize, within: Duration) -> bool {
        let t = Instant::now();
        loop {
            if self.count(needle) >= n {
                return true;
            }
            if t.elapsed() > within || self.proc_exited() {
                return self.count(needle) >= n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Like `wait_line`, panicking with the guard's output if the line does not come.
    pub fn expect(&self, suffix: &str, within: Duration) {
        assert!(
            self.wait_line(suffix, within),
            "guard never printed `{suffix}`; stdout:\n{}\nstderr:\n{}",
            self.output(),
            self.stderr()
        );
    }

    fn proc_exited(&self) -> bool {
        // SAFETY: waitpid with WNOHANG|WNOWAIT only peeks at our own child.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is ours and writable; WNOWAIT leaves the child to be reaped later.
        let rc = unsafe {
            libc::waitid(libc::P_PID, self.proc.0.id(), &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        };
        // SAFETY: waitid filled info for a child state change (rc == 0), so si_pid is the field it set.
        rc == 0 && unsafe { info.si_pid() } != 0
    }

    /// SIGTERM (`ip netns exec` execs the tracer, so the child is the tracer); waits for exit.
    pub fn stop(mut self) -> (ExitStatus, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.proc.0.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.proc.0.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "guard did not stop on SIGTERM: {}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(200));
        (status, self.output())
    }
}

/// Runs `tracer guard ARGS...` inside a namespace (or on the host with `None`) to completion.
pub fn guard_cmd(ns: Option<&Netns>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = match ns {
        Some(ns) => ns.command(tracer_tests::tracer_bin()),
        None => Command::new(tracer_tests::tracer_bin()),
    };
    let out = cmd.arg("guard").args(args).output().expect("run tracer guard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Is something receiving on /dev/log?
fn dev_log_listening() -> bool {
    let Ok(s) = UnixDatagram::unbound() else { return false };
    s.connect("/dev/log").is_ok()
}

/// A syslog daemon on /dev/log for sshd's syslog(3) calls: Debian's rsyslogd started for the
/// test when nothing listens there yet (and stopped, its socket removed, on drop), writing
/// auth messages to `auth_log`. When another daemon already listens, it is used as is and
/// `auth_log` is None.
pub struct Syslog {
    proc: Option<Proc>,
    pub auth_log: Option<PathBuf>,
}

impl Syslog {
    pub fn start(dir: &TempDir) -> Syslog {
        ensure_packages();
        if dev_log_listening() {
            return Syslog { proc: None, auth_log: None };
        }
        // A stale socket file with no reader: rsyslogd replaces it.
        let auth_log = dir.file("auth.log");
        let conf = dir.file("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{dir}\")\nmodule(load=\"imuxsock\" SysSock.Name=\"/dev/log\")\n\
                 auth,authpriv.* action(type=\"omfile\" file=\"{log}\")\n",
                dir = dir.path().display(),
                log = auth_log.display()
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.file("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.file("rsyslogd.stderr")).unwrap())
            .spawn()
            .expect("start rsyslogd");
        let s = Syslog { proc: Some(Proc(child)), auth_log: Some(auth_log) };
        let t = Instant::now();
        while !dev_log_listening() {
            assert!(t.elapsed() < Duration::from_secs(10), "rsyslogd did not open /dev/log");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            // SAFETY: signalling our own child; it removes /dev/log on a clean exit.
            unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while p.0.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            p.kill_tree();
            if !dev_log_listening() {
                let _ = std::fs::remove_file("/dev/log");
            }
        }
    }
}

/// Distinct addresses per test: `10.{base}.{pid % 250}.{host}`.
pub fn subnet(base: u8) -> impl Fn(u8) -> String {
    let mid = std::process::id() % 250;
    move |host| format!("10.{base}.{mid}.{host}")
}

/// A path as the `&str` command lines take.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `text` to `name` in `dir`.
pub fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.file(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Server (`.1`) and client namespaces; the client holds `.2`, `.3` and `.4`.
pub fn pair(base: u8) -> (Netns, Netns, impl Fn(u8) -> IpAddr) {
    let ip = subnet(base);
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    srv.veth(
        &cli,
        &[&format!("{}/24", ip(1))],
        &[&format!("{}/24", ip(2)), &format!("{}/24", ip(3)), &format!("{}/24", ip(4))],
    );
    (srv, cli, move |h| ip(h).parse().unwrap())
}
