//! What `tracer protect` watches, found on the machine and named by (inode, device): private
//! keys (host keys, `~/.ssh/id_*`, any file under `~/.ssh` that starts with a private-key
//! header), allowed executables, and the sockets ssh-agent listens on (found by the
//! listening process, not by the name) plus sshd's forwarded agent sockets.

use std::{
    collections::HashMap,
    io::Read as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use tracer_common::protect::InodeKey;

use crate::sshd_exe;

/// OpenSSH's programs that read private keys (Debian and RHEL paths).
pub(crate) const DEFAULT_ALLOWED: &[&str] = &[
    "/usr/bin/ssh",
    "/usr/bin/ssh-add",
    "/usr/bin/ssh-agent",
    "/usr/bin/ssh-keygen",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/libexec/openssh/ssh-keysign",
];

/// A protected private-key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyFile {
    pub path: PathBuf,
    pub key: InodeKey,
    pub owner: u32,
}

/// A socket an agent listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Agent {
    pub path: PathBuf,
    pub key: InodeKey,
    /// The listening process, its uid, login uid and session.
    pub pid: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// Created by sshd for a forwarded agent (`/tmp/ssh-*/agent.*`), not by ssh-agent.
    pub forwarded: bool,
}

/// stat(2)'s st_dev as the kernel's dev_t (`MKDEV`), what `i_sb->s_dev` holds.
pub(crate) fn inode_key(m: &std::fs::Metadata) -> InodeKey {
    InodeKey { ino: m.ino(), dev: sshd_exe::kernel_dev(m.dev()), _pad: 0 }
}

/// The allowed executables, vetted as the guard vets sshd (root-owned, not group/other
/// writable): an executable a user could rewrite vouches for nothing. Missing defaults are
/// skipped; a missing or refused explicit path is an error.
pub(crate) fn allowed(paths: &[PathBuf]) -> Result<Vec<(PathBuf, InodeKey)>, String> {
    let defaults = paths.is_empty();
    let list: Vec<PathBuf> = if defaults {
        DEFAULT_ALLOWED.iter().chain(sshd_exe::DEFAULT_SSHD_EXES).map(PathBuf::from).filter(|p| p.exists()).collect()
    } else {
        paths.to_vec()
    };
    let mut out = Vec::new();
    for p in list {
        let key = sshd_exe::vet(&p, "allowed executable")?;
        out.push((p, key));
    }
    Ok(out)
}

/// Home directories from /etc/passwd (each once) plus `extra`.
pub(crate) fn homes(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(5))
        .filter(|h| h.starts_with('/') && *h != "/")
        .map(PathBuf::from)
        .collect();
    out.extend(extra.iter().cloned());
    out.sort();
    out.dedup();
    out
}

/// Every private key on the machine: host keys and the keys under each home's `.ssh`.
pub(crate) fn keys(homes: &[PathBuf]) -> Vec<KeyFile> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/ssh") {
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("ssh_host_") && name.ends_with("_key") {
                push_key(&mut out, &e.path(), false);
            }
        }
    }
    for home in homes {
        let Ok(dir) = std::fs::read_dir(home.join(".ssh")) else { continue };
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let by_name = name.starts_with("id_") && !name.ends_with(".pub");
            push_key(&mut out, &e.path(), !by_name);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// Adds `path` if it is a regular file (links are not followed: a link to another file in
/// a user's `.ssh` must not make the tracer read it) and, when `by_content`, starts with a
/// private-key header.
fn push_key(out: &mut Vec<KeyFile>, path: &Path, by_content: bool) {
    // O_NONBLOCK: a FIFO planted in ~/.ssh must not hang the scan.
    let Ok(mut f) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    else {
        return;
    };
    let Ok(m) = f.metadata() else { return };
    if !m.is_file() {
        return;
    }
    if by_content {
        let mut head = [0u8; 64];
        let n = f.read(&mut head).unwrap_or(0);
        if !is_private_key(&head[..n]) {
            return;
        }
    }
    out.push(KeyFile { path: path.to_path_buf(), key: inode_key(&m), owner: m.uid() });
}

/// PEM and OpenSSH private keys: `-----BEGIN ... PRIVATE KEY-----` on the first line.
pub(crate) fn is_private_key(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.starts_with(b"-----BEGIN ") && line.windows(16).any(|w| w == b"PRIVATE KEY-----")
}

/// The listening unix sockets with a path in `pid`'s network namespace (unix sockets are per
/// namespace: an sshd in a container lists its own): socket inode -> path.
fn listening_unix(pid: u32) -> HashMap<u64, PathBuf> {
    const ACC: u32 = 1 << 16; // __SO_ACCEPTCON: listening
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    let mut out = HashMap::new();
    for l in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || !f[7].starts_with('/') {
            continue;
        }
        let flags = u32::from_str_radix(f[3], 16).unwrap_or(0);
        if flags & ACC == 0 {
            continue;
        }
        if let Ok(ino) = f[6].parse::<u64>() {
            out.insert(ino, PathBuf::from(f[7]));
        }
    }
    out
}

fn proc_id(pid: u32, name: &str) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(u32::MAX)
}

/// Whether `p` is a forwarded agent socket as sshd names it: `/tmp/ssh-XXXX/agent.PID`.
pub(crate) fn forwarded_name(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.strip_prefix("/tmp/ssh-").and_then(|r| r.split_once('/')).is_some_and(|(d, f)| {
        !d.is_empty() && !d.contains('/') && f.strip_prefix("agent.").is_some_and(|n| !n.is_empty() && !n.contains('/'))
    })
}

/// Agents: listening sockets held by a process whose executable is one of `agent_exes`
/// (by inode), and forwarded agent sockets held by a process running an sshd executable.
pub(crate) fn agents(agent_exes: &[InodeKey], sshd_exes: &[InodeKey]) -> Vec<Agent> {
    let mut by_netns: HashMap<PathBuf, HashMap<u64, PathBuf>> = HashMap::new();
    let mut out: Vec<Agent> = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(exe) = std::fs::metadata(format!("/proc/{pid}/exe")) else { continue };
        let exe = inode_key(&exe);
        let (is_agent, is_sshd) = (agent_exes.contains(&exe), sshd_exes.contains(&exe));
        if !is_agent && !is_sshd {
            continue;
        }
        let Ok(netns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else { continue };
        let listening = by_netns.entry(netns).or_insert_with(|| listening_unix(pid));
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let t = target.to_string_lossy();
            let Some(ino) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) else { continue };
            let Some(path) = ino.parse::<u64>().ok().and_then(|i| listening.get(&i)) else { continue };
            // ssh-agent's own default name has the same shape: the listener decides.
            let forwarded = !is_agent && forwarded_name(path);
            if !is_agent && !forwarded {
                continue;
            }
            // The socket file as this process's mount namespace names it.
            let Ok(m) = std::fs::metadata(format!("/proc/{pid}/root{}", path.display())) else { continue };
            let key = inode_key(&m);
            if out.iter().any(|a| a.key == key) {
                continue;
            }
            let (uid, auid, ses) = if forwarded {
                // sshd listens as root and gives the socket to the user it serves.
                (m.uid(), proc_id(pid, "loginuid"), proc_id(pid, "sessionid"))
            } else {
                let uid = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()).unwrap_or(u32::MAX);
                (uid, proc_id(pid, "loginuid"), proc_id(pid, "sessionid"))
            };
            out.push(Agent { path: path.clone(), key, pid, uid, auid, ses, forwarded });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_headers() {
        assert!(is_private_key(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl"));
        assert!(is_private_key(b"-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(is_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(!is_private_key(b"ssh-ed25519 AAAA user@host\n"));
        assert!(!is_private_key(b"-----BEGIN CERTIFICATE-----\n"));
        assert!(!is_private_key(b"x-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(!is_private_key(b"-----BEGIN PUBLIC KEY-----\nPRIVATE KEY-----"), "only the first line counts");
    }

    #[test]
    fn forwarded_agent_names() {
        assert!(forwarded_name(Path::new("/tmp/ssh-XXXXabcd/agent.1234")));
        assert!(!forwarded_name(Path::new("/tmp/ssh-XXXXabcd/sub/agent.1234")));
        assert!(!forwarded_name(Path::new("/tmp/ssh-/agent.1")));
        assert!(!forwarded_name(Path::new("/run/user/1000/ssh-agent.sock")));
        assert!(!forwarded_name(Path::new("/tmp/ssh-abc/agent.")));
    }
}
