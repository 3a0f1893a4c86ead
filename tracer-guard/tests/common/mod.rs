//! Test helpers: network namespaces (removed on drop, even when a test fails), veth links,
//! TCP connects from inside a namespace, Debian packages installed only when missing.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static PACKAGES: Once = Once::new();

/// Runs a command, panicking with its output on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

/// Installs the Debian packages the tests need, only those whose programs are absent
/// (`cargo xtask setup` installs them too: nftables iptables iproute2 openssh-server sshpass).
pub fn ensure_packages() {
    PACKAGES.call_once(|| {
        let want = [
            ("nft", "nftables"),
            ("iptables", "iptables"),
            ("ip", "iproute2"),
            ("sshd", "openssh-server"),
            ("sshpass", "sshpass"),
        ];
        let missing: Vec<&str> = want
            .iter()
            .filter(|(p, _)| !have(p))
            .map(|(_, pkg)| *pkg)
            .collect();
        if missing.is_empty() {
            return;
        }
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let mut args = vec!["install", "-y", "-qq"];
        args.extend(missing.iter());
        let ok = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not install {missing:?}");
    });
}

/// A network namespace that is deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        ensure_packages();
        let name = format!(
            "tg{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            tag
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    pub fn try_exec(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn runner(&self) -> tracer_guard::CommandRunner {
        tracer_guard::CommandRunner::netns(&self.name)
    }

    /// Links `self` and `peer` with a veth pair, giving each side the listed addresses.
    pub fn veth(&self, peer: &Netns, mine: &[&str], theirs: &[&str]) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (a, b) = (
            format!("tga{}x{n}", std::process::id() % 100000),
            format!("tgb{}x{n}", std::process::id() % 100000),
        );
        sh(&[
            "ip", "link", "add", &a, "netns", &self.name, "type", "veth", "peer", "name", &b,
            "netns", &peer.name,
        ]);
        for (ns, dev, addrs) in [(self, &a, mine), (peer, &b, theirs)] {
            for addr in addrs {
                let mut args = vec!["ip", "-n", &ns.name, "addr", "add", addr, "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                sh(&args);
            }
            sh(&["ip", "-n", &ns.name, "link", "set", dev, "up"]);
        }
    }

    /// Runs `f` on a thread that has entered this namespace (setns affects only that thread).
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Connects with a chosen source address (std's TcpStream cannot bind first).
fn tcp_connect(src: IpAddr, dst: SocketAddr, timeout: Duration) -> Result<(), std::io::ErrorKind> {
    use std::io::Error;
    let to_sa = |ip: IpAddr, port: u16| -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: zeroed sockaddr_storage is valid; we fill the family-specific prefix.
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
    let fam = if src.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: standard socket calls on a descriptor we own and close.
    unsafe {
        let fd = libc::socket(
            fam,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
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
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, timeout.as_millis() as i32) != 1 {
            return close(Err(std::io::ErrorKind::TimedOut));
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut _,
            &mut len,
        );
        if err != 0 {
            return close(Err(Error::from_raw_os_error(err).kind()));
        }
        close(Ok(()))
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "tg-{}-{}-{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
