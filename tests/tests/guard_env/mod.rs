//! The world `tracer guard` is tested in: network namespaces joined by veth pairs (deleted
//! on drop), a real OpenSSH sshd in one of them, sshpass + ssh attackers in another, an
//! rsyslogd for the syslog path, and the guard itself as a child process whose stdout is
//! watched. Everything started here is stopped by Drop, also when an assertion fails.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr},
    os::{fd::AsRawFd, unix::net::UnixDatagram},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, MutexGuard, Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static PACKAGES: Once = Once::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The kernel capture sees every sshd on the machine and the machine has few CPUs: the guard
/// tests run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn uniq() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// Runs a command, panicking with its output on failure; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|d| Path::new(d).join(program).exists())
}

/// Installs the Debian packages whose programs are missing (`cargo xtask setup` installs
/// them too), without starting their daemons.
pub fn ensure_packages() {
    PACKAGES.call_once(|| {
        let want = [
            ("nft", "nftables"),
            ("ip", "iproute2"),
            ("sshd", "openssh-server"),
            ("ssh", "openssh-client"),
            ("sshpass", "sshpass"),
            ("rsyslogd", "rsyslog"),
        ];
        let missing: Vec<&str> = want.iter().filter(|(p, _)| !have(p)).map(|(_, pkg)| *pkg).collect();
        if missing.is_empty() {
            return;
        }
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let had_policy = policy.exists();
        if !had_policy {
            std::fs::write(policy, "#!/bin/sh\nexit 101\n").unwrap();
            std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        if !had_policy {
            let _ = std::fs::remove_file(policy);
        }
        assert!(ok, "could not install {missing:?}");
    });
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        ensure_packages();
        let name = format!("tgc{}-{}-{tag}", std::process::id(), uniq());
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// `ip netns exec NAME` + args, as a Command.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// The namespace's whole nftables ruleset.
    pub fn ruleset(&self) -> String {
        self.exec(&["nft", "list", "ruleset"])
    }

    /// Links `self` and `peer` with a veth pair, giving each side the listed addresses.
    pub fn veth(&self, peer: &Netns, mine: &[&str], theirs: &[&str]) {
        let n = uniq();
        let (a, b) = (format!("gca{}x{n}", std::process::id() % 100000), format!("gcb{}x{n}", std::process::id() % 100000));
        sh(&["ip", "link", "add", &a, "netns", &self.name, "type", "veth", "peer", "name", &b, "netns", &peer.name]);
        for (ns, dev, addrs) in [(self, &a, mine), (peer, &b, theirs)] {
            for addr in addrs {
                sh(&["ip", "-n", &ns.name, "addr", "add", addr, "dev", dev]);
            }
            sh(&["ip", "-n", &ns.name, "link", "set", dev, "up"]);
        }
    }

    /// TCP connect from `src` to `dst` inside this namespace: Ok if accepted, Err(kind) if not.
    pub fn connect(&self, src: IpAddr, dst: SocketAddr) -> Result<(), std::io::ErrorKind> {
        let path = PathBuf::from("/var/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("netns file");
            // SAFETY: plain syscall on a valid fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            tcp_connect(src, dst, Duration::from_secs(3))
        })
        .join()
        .expect("netns thread")
    }

    /// Polls `connect` until it gives `want` (the firewall changes asynchronously).
    pub fn wait_connect(&self, src: IpAddr, dst: SocketAddr, want: Result<(), std::io::ErrorKind>, within: Duration) -> bool {
        let t = Instant::now();
        loop {
            if self.connect(src, dst) == want {
                return true;
            }
            if t.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Connects with a chosen source address (std's TcpStream cannot bind first).
fn tcp_connect(src: IpAddr, dst: SocketAddr, timeout: Duration) -> Result<(), std::io::ErrorKind> {
    use std::io::Error;
    let to_sa = |ip: IpAddr, port: u16| -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: a zeroed sockaddr_storage is valid; the family-specific prefix is filled.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        match ip {
            IpAddr::V4(v4) => {
                let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as _;
                sin.sin_port = port.to_be();
                sin.sin_addr.s_addr = u32::from(v4).to_be();
                (ss, std::mem::size_of::<libc::sockaddr_in>() as _)
            }
            IpAddr::V6(v6) => {
                let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as _;
                sin6.sin6_port = port.to_be();
                sin6.sin6_addr.s6_addr = v6.octets();
                (ss, std::mem::size_of::<libc::sockaddr_in6>() as _)
            }
        }
    };
    let fam = if src.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: standard socket calls on a descriptor owned and closed here.
    unsafe {
        let fd = libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let close = |r| {
            libc::close(fd);
            r
        };
        let (s, sl) = to_sa(src, 0);
        if libc::bind(fd, &s as *const _ as *const libc::sockaddr, sl) != 0 {
            panic!("bind {src}: {}", Error::last_os_error());
        }
        let (d, dl) = to_sa(dst.ip(), dst.port());
        if libc::connect(fd, &d as *const _ as *const libc::sockaddr, dl) != 0 {
            let e = Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return close(Err(e.kind()));
            }
        }
        let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        if libc::poll(&mut pfd, 1, timeout.as_millis() as i32) != 1 {
            return close(Err(std::io::ErrorKind::TimedOut));
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut _ as *mut _, &mut len);
        if err != 0 {
            return close(Err(Error::from_raw_os_error(err).kind()));
        }
        close(Ok(()))
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tracer-guard-test-{}-{}-{tag}", std::process::id(), uniq()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
        let key = dir.file("host_ed25519");
        if !key.exists() {
            sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()]);
        }
        let conf = dir.file("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "Port {SSH_PORT}\nListenAddress {listen}\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication no\nUsePAM no\nPermitRootLogin no\n\
                 MaxAuthTries 6\nMaxStartups 100\nSyslogFacility AUTH\nLogLevel INFO\n",
                key.display(),
                dir.file("sshd.pid").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let stderr_log = dir.file("sshd.stderr");
        let mut cmd = ns.command("/usr/sbin/sshd");
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
        let rc = unsafe {
            libc::waitid(libc::P_PID, self.proc.0.id(), &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        };
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
