//! The guard and fleet benches' world: network namespaces (joined by a veth pair for the
//! guard's), child processes and a scratch directory, each undone on drop so that every exit
//! path (errors included) cleans up.

use std::{
    ffi::OsStr,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::util::check;

/// A network namespace with `lo` up; on drop every process still inside is killed and the
/// namespace deleted (with its veth end and nftables).
pub(super) struct Netns {
    pub name: String,
}

impl Netns {
    /// A fixed name: a stale namespace of an interrupted run is deleted first.
    pub(super) fn new(name: &str) -> anyhow::Result<Netns> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        check(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns { name: name.to_string() };
        check(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// `ip netns exec NAME PROGRAM` (ip execs PROGRAM, so the child's pid is PROGRAM's).
    pub(super) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Links `self` and `peer` with a veth pair, giving each end its addresses (CIDR).
    pub(super) fn veth(&self, peer: &Netns, mine: &[String], theirs: &[String]) -> anyhow::Result<()> {
        // Interface names are at most 15 bytes; each lives in its own namespace.
        let (a, b) = ("tbguard-a", "tbguard-b");
        check(
            Command::new("ip")
                .args(["link", "add", a, "netns", &self.name, "type", "veth", "peer", "name", b])
                .args(["netns", &peer.name]),
        )?;
        for (ns, dev, addrs) in [(self, a, mine), (peer, b, theirs)] {
            for addr in addrs {
                check(Command::new("ip").args(["-n", &ns.name, "addr", "add", addr, "dev", dev]))?;
            }
            check(Command::new("ip").args(["-n", &ns.name, "link", "set", dev, "up"]))?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // sshd's per-connection processes start their own sessions: find them by namespace.
        let pids = crate::util::output("ip", &["netns", "pids", &self.name]);
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill takes plain integers; these processes live in our namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A child in its own process group: SIGTERM to the group on drop, SIGKILL after 5 s.
pub(super) struct Proc(pub Child);

impl Proc {
    pub(super) fn spawn(cmd: &mut Command) -> anyhow::Result<Proc> {
        let child = cmd.process_group(0).spawn().map_err(|e| anyhow::anyhow!("cannot start {cmd:?}: {e}"))?;
        Ok(Proc(child))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = -(self.0.id() as i32);
        // SAFETY: kill takes plain integers; the group is our child's and the child is not reaped.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let t = Instant::now();
        while matches!(self.0.try_wait(), Ok(None)) {
            if t.elapsed() > Duration::from_secs(5) {
                // SAFETY: as above.
                unsafe { libc::kill(group, libc::SIGKILL) };
                let _ = self.0.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A scratch directory, removed on drop.
pub(super) struct Scratch(pub PathBuf);

impl Scratch {
    pub(super) fn new(tag: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("tracer-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
