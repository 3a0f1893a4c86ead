//! Network namespaces for tests that install firewall rules or run servers: each test gets
//! its own namespaces so the host's firewall and sockets are never touched, and tests can run
//! in parallel. Shared by `tests/tests/guard.rs` and tracer-guard's own integration tests.

use std::{
    ffi::OsStr,
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Command,
    sync::Once,
    time::{Duration, Instant},
};

use crate::uniq;

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
/// them too), so a bare machine can run the tests; once per process, and a no-op when all
/// are present.
pub fn ensure_packages() {
    static PACKAGES: Once = Once::new();
    PACKAGES.call_once(|| {
        let want = [
            ("nft", "nftables"),
            ("iptables", "iptables"),
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
        // policy-rc.d exiting 101 keeps apt from starting sshd/rsyslogd on the host: the tests
        // start their own, inside namespaces.
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

/// A network namespace with only `lo` up, deleted on drop (so also when a test panics).
/// The name holds the pid and a counter: parallel tests and test binaries never collide.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        ensure_packages();
        let name = format!("tg{}-{}-{tag}", std::process::id(), uniq());
        sh(&["ip", "netns", "add", &name]);
        // Built before the next command so that Drop deletes it if that fails.
        let ns = Netns { name };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// `ip netns exec NAME PROGRAM`, to add arguments and stdio to.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args` inside the namespace like `sh`.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Like `exec`, but failure (stderr) is a value, for asserting that something is absent.
    pub fn try_exec(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command(args[0]).args(&args[1..]).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The namespace's whole nftables ruleset.
    pub fn ruleset(&self) -> String {
        self.exec(&["nft", "list", "ruleset"])
    }

    /// Links `self` and `peer` with a veth pair, giving each side the listed addresses.
    pub fn veth(&self, peer: &Netns, mine: &[&str], theirs: &[&str]) {
        // Interface names are limited to 15 bytes.
        let (n, pid) = (uniq(), std::process::id() % 100000);
        let (a, b) = (format!("tga{pid}x{n}"), format!("tgb{pid}x{n}"));
        sh(&["ip", "link", "add", &a, "netns", &self.name, "type", "veth", "peer", "name", &b, "netns", &peer.name]);
        for (ns, dev, addrs) in [(self, &a, mine), (peer, &b, theirs)] {
            for addr in addrs {
                let mut args = vec!["ip", "-n", &ns.name, "addr", "add", addr, "dev", dev];
                // Without duplicate address detection an IPv6 address is usable at once.
                if addr.contains(':') {
                    args.push("nodad");
                }
                sh(&args);
            }
            sh(&["ip", "-n", &ns.name, "link", "set", dev, "up"]);
        }
    }

    /// Runs `f` on a thread that has entered this namespace: setns changes only the calling
    /// thread, so the test's own thread stays where it was. Sockets made in `f` keep their
    /// namespace when returned.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = PathBuf::from("/var/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("netns file");
            // SAFETY: plain syscall on a valid fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    }

    /// TCP connect from `src` to `dst` inside this namespace: Ok if accepted, Err(kind) if not.
    pub fn connect(&self, src: IpAddr, dst: SocketAddr) -> Result<(), std::io::ErrorKind> {
        self.run_in(move || tcp_connect(src, dst, Duration::from_secs(3)))
    }

    /// Polls `connect` until it gives `want` (firewalls and servers change asynchronously).
    pub fn wait_connect(
        &self,
        src: IpAddr,
        dst: SocketAddr,
        want: Result<(), std::io::ErrorKind>,
        within: Duration,
    ) -> bool {
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
        // Deleting the namespace also removes its veth ends and firewall rules.
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
                // SAFETY: sockaddr_storage is larger and at least as aligned as sockaddr_in, and ss is ours.
                let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as _;
                sin.sin_port = port.to_be();
                sin.sin_addr.s_addr = u32::from(v4).to_be();
                (ss, size_of::<libc::sockaddr_in>() as _)
            }
            IpAddr::V6(v6) => {
                // SAFETY: sockaddr_storage is larger and at least as aligned as sockaddr_in6, and ss is ours.
                let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as _;
                sin6.sin6_port = port.to_be();
                sin6.sin6_addr.s6_addr = v6.octets();
                (ss, size_of::<libc::sockaddr_in6>() as _)
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
        // Non-blocking connect + poll: a DROP rule must give TimedOut, not hang the test.
        let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        if libc::poll(&mut pfd, 1, timeout.as_millis() as i32) != 1 {
            return close(Err(std::io::ErrorKind::TimedOut));
        }
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut _ as *mut _, &mut len);
        if err != 0 {
            return close(Err(Error::from_raw_os_error(err).kind()));
        }
        close(Ok(()))
    }
}
