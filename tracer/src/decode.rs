//! Raw ring-buffer records to `Event`s. Every length is checked against the record: a
//! malformed record is an error, never a panic or an out-of-bounds read.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use thiserror::Error;
use tracer_common::{
    agg::AggKey,
    connect::{AF_INET, AF_INET6, AF_UNIX, ConnectBody},
    dns::{DIR_SEND, DnsBody},
    event::*,
    exec::ExecBody,
    exit::ExitBody,
    listen::ListenBody,
    open::{AT_FDCWD, OpenBody},
    outcome::OutcomeBody,
    protect::InodeKey,
    rules::{NAME_FD, NAME_NONE, RuleBits},
    sshlog::{PEER_AMBIGUOUS, PEER_FOUND, SshLogBody, VIA_SENDTO},
    syscall::{NAME_BASE_UNKNOWN, NAME_INODE, NameRec, SyscallBody},
};

use crate::event::{
    Connect, ConnectOutcome, Detail, DnsMsg, Event, Exec, Exit, Id, Inode, Listen, LogLine, LogPeer, Name, Open, Peer,
    Syscall, join, normalize,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    Kind(u32),
    #[error("record strings overrun the record ({need} > {have} bytes)")]
    Overrun { need: usize, have: usize },
    #[error("unknown address family {0}")]
    Family(u16),
}

/// Exe paths learnt per process: the kernel sends a process's exe with its first record
/// and with each exec, not with every record.
const EXE_CACHE_MAX: usize = 65536;

pub(crate) struct Decoder {
    /// Added to CLOCK_BOOTTIME to get wall-clock time.
    boot_to_wall_ns: i128,
    exes: HashMap<u32, Vec<u8>>,
    /// Fall back to /proc/PID/exe when the kernel has not sent a process's exe.
    pub resolve_exe: bool,
}

fn read_pod<T: aya::Pod>(b: &[u8], off: usize) -> Result<T, DecodeError> {
    let n = size_of::<T>();
    let s = b.get(off..off + n).ok_or(DecodeError::Short(b.len()))?;
    // SAFETY: T is aya::Pod (a #[repr(C)] record of integers: any bit pattern is valid) and
    // the slice has exactly size_of::<T>() bytes. read_unaligned: ring-buffer data is 8-aligned
    // but slices of it need not be.
    Ok(unsafe { std::ptr::read_unaligned(s.as_ptr().cast::<T>()) })
}

struct Strings<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Strings<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos + n;
        let s = self.data.get(self.pos..end).ok_or(DecodeError::Overrun { need: end, have: self.data.len() })?;
        self.pos = end;
        Ok(s)
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Self {
            boot_to_wall_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME),
            exes: HashMap::new(),
            resolve_exe: true,
        }
    }

    pub(crate) fn decode(&mut self, rec: &[u8]) -> Result<Event, DecodeError> {
        if rec.len() < HEADER_SIZE {
            return Err(DecodeError::Short(rec.len()));
        }
        let h: Header = read_pod(rec, 0)?;
        let kind = EventKind::try_from(h.kind).map_err(DecodeError::Kind)?;
        let body_size = match kind {
            EventKind::Exec => size_of::<ExecBody>(),
            EventKind::Open => size_of::<OpenBody>(),
            EventKind::Connect => size_of::<ConnectBody>(),
            EventKind::SshLog => size_of::<SshLogBody>(),
            EventKind::Exit => size_of::<ExitBody>(),
            EventKind::ConnectOutcome => size_of::<OutcomeBody>(),
            EventKind::Dns => size_of::<DnsBody>(),
            EventKind::Listen => size_of::<ListenBody>(),
            EventKind::Syscall => size_of::<SyscallBody>(),
        };
        let size = (h.size as usize).min(rec.len());
        let mut rec = &rec[..size];
        // The candidate rules trail the record (`trace --rules`).
        let rules = if h.flags & F_RULES != 0 {
            let at = rec.len().checked_sub(RULES_TRAILER).ok_or(DecodeError::Short(rec.len()))?;
            let bits: RuleBits = read_pod(rec, at)?;
            rec = &rec[..at];
            Some(bits)
        } else {
            None
        };
        let mut s = Strings { data: rec, pos: HEADER_SIZE + body_size };
        if s.pos > rec.len() {
            return Err(DecodeError::Short(rec.len()));
        }
        let exe = s.take(h.exe_len as usize)?;
        let root = s.take(h.root_len as usize)?;
        let detail = match kind {
            EventKind::Exec => {
                let b: ExecBody = read_pod(rec, HEADER_SIZE)?;
                let mut filename = s.take(b.filename_len as usize)?.to_vec();
                // A successful exec reported at its syscall exit (`trace --rules`) has no
                // filename of its own: the new image's executable is it.
                if filename.is_empty() && h.flags & F_RULES != 0 && h.ret == 0 && h.flags & F_EXE_PRESENT != 0 {
                    filename = exe.to_vec();
                }
                let cwd = s.take(b.cwd_len as usize)?.to_vec();
                let argv_blob = s.take(b.argv_len as usize)?;
                Detail::Exec(Exec {
                    filename,
                    cwd,
                    argv: split_argv(argv_blob),
                    argv_truncated: h.flags & F_ARGV_TRUNCATED != 0,
                    argc: (b.argc_known != 0).then_some(b.argc),
                })
            }
            EventKind::Open => {
                let b: OpenBody = read_pod(rec, HEADER_SIZE)?;
                let name = s.take(b.path_len as usize)?.to_vec();
                let base = s.take(b.base_len as usize)?;
                let cwd = s.take(b.cwd_len as usize)?;
                let base_unknown = h.flags & F_BASE_UNKNOWN != 0 && !name.starts_with(b"/");
                let host_path = if name.starts_with(b"/") {
                    // Absolute names of a chrooted process are relative to its root.
                    if h.flags & F_CHROOTED != 0 && !root.is_empty() {
                        join(root, &name[1..])
                    } else {
                        normalize(&name)
                    }
                } else if base_unknown {
                    name.clone()
                } else {
                    join(base, &name)
                };
                let cwd = if !cwd.is_empty() {
                    Some(cwd.to_vec())
                } else if b.dfd == AT_FDCWD && !base.is_empty() && !name.starts_with(b"/") {
                    Some(base.to_vec())
                } else {
                    None
                };
                Detail::Open(Open { host_path, name, flags: b.flags, mode: b.mode, dfd: b.dfd, base_unknown, cwd })
            }
            EventKind::Connect => {
                let b: ConnectBody = read_pod(rec, HEADER_SIZE)?;
                let peer = match b.family {
                    AF_INET => Peer::Inet {
                        address: IpAddr::V4(Ipv4Addr::new(b.addr[0], b.addr[1], b.addr[2], b.addr[3])),
                        port: b.port,
                    },
                    AF_INET6 => Peer::Inet { address: IpAddr::V6(Ipv6Addr::from(b.addr)), port: b.port },
                    AF_UNIX => {
                        let mut path = s.take(b.path_len as usize)?.to_vec();
                        // A pathname socket's name ends at its first NUL (callers often pass
                        // the whole sockaddr_un, garbage after the NUL included); an abstract
                        // name (leading NUL) is exactly addrlen bytes.
                        if path.first() != Some(&0)
                            && let Some(end) = path.iter().position(|&c| c == 0)
                        {
                            path.truncate(end);
                        }
                        Peer::Unix { path }
                    }
                    other => return Err(DecodeError::Family(other)),
                };
                let unix_file = (b.family == AF_UNIX && b.unix_file != InodeKey::default()).then_some(b.unix_file);
                Detail::Connect(Connect { fd: b.fd, peer, unix_file })
            }
            EventKind::Listen => {
                let b: ListenBody = read_pod(rec, HEADER_SIZE)?;
                let ip = match b.family {
                    AF_INET => IpAddr::V4(Ipv4Addr::new(b.addr[0], b.addr[1], b.addr[2], b.addr[3])),
                    AF_INET6 => IpAddr::V6(Ipv6Addr::from(b.addr)),
                    other => return Err(DecodeError::Family(other)),
                };
                Detail::Listen(Listen { fd: b.fd, local: std::net::SocketAddr::new(ip, b.port) })
            }
            EventKind::Dns => {
                let b: DnsBody = read_pod(rec, HEADER_SIZE)?;
                let data = s.take(b.len as usize)?.to_vec();
                Detail::Dns(DnsMsg { fd: b.fd, sent: b.dir == DIR_SEND, truncated: b.total > b.len, data })
            }
            EventKind::ConnectOutcome => {
                let b: OutcomeBody = read_pod(rec, HEADER_SIZE)?;
                let address = match b.family {
                    AF_INET => IpAddr::V4(Ipv4Addr::new(b.addr[0], b.addr[1], b.addr[2], b.addr[3])),
                    AF_INET6 => IpAddr::V6(Ipv6Addr::from(b.addr)),
                    other => return Err(DecodeError::Family(other)),
                };
                Detail::ConnectOutcome(ConnectOutcome {
                    peer: Peer::Inet { address, port: b.port },
                    established: b.established != 0,
                })
            }
            EventKind::Exit => {
                let b: ExitBody = read_pod(rec, HEADER_SIZE)?;
                Detail::Exit(Exit { code: (b.known != 0).then_some(b.code) })
            }
            EventKind::SshLog => {
                let b: SshLogBody = read_pod(rec, HEADER_SIZE)?;
                let data = s.take(b.len as usize)?.to_vec();
                Detail::Log(LogLine {
                    fd: b.fd,
                    via_syslog: b.via == VIA_SENDTO,
                    data,
                    truncated: b.total > b.len,
                    peer: log_peer(&b)?,
                })
            }
            EventKind::Syscall => {
                let b: SyscallBody = read_pod(rec, HEADER_SIZE)?;
                let mut names = Vec::new();
                for n in b.names {
                    let path = s.take(n.path_len as usize)?;
                    let base = s.take(n.base_len as usize)?;
                    if n.kind != NAME_NONE {
                        names.push(name(&n, path, base, h.flags & F_CHROOTED != 0, root));
                    }
                }
                let cwd = s.take(b.cwd_len as usize)?;
                let sockaddr = s.take(b.sockaddr_len as usize)?.to_vec();
                Detail::Syscall(Syscall { names, cwd: (!cwd.is_empty()).then(|| cwd.to_vec()), sockaddr })
            }
        };
        let exe = if h.flags & F_EXE_PRESENT != 0 && !exe.is_empty() {
            if self.exes.len() >= EXE_CACHE_MAX {
                self.exes.clear();
            }
            self.exes.insert(h.tgid, exe.to_vec());
            Some(exe.to_vec())
        } else {
            self.exes.get(&h.tgid).cloned().or_else(|| {
                if !self.resolve_exe {
                    return None;
                }
                let p = std::fs::read_link(format!("/proc/{}/exe", h.tgid)).ok()?;
                let p = std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec();
                self.exes.insert(h.tgid, p.clone());
                Some(p)
            })
        };
        let chrooted = if h.flags & F_ROOT_UNKNOWN != 0 { None } else { Some(h.flags & F_CHROOTED != 0) };
        let root = if chrooted == Some(true) && !root.is_empty() { root.to_vec() } else { b"/".to_vec() };
        let comm_len = h.comm.iter().position(|&c| c == 0).unwrap_or(h.comm.len());
        let auid_known = h.flags & F_AUID_UNKNOWN == 0;
        Ok(Event {
            time_ns: (i128::from(h.time_ns) + self.boot_to_wall_ns).max(0) as u64,
            pid: h.tgid,
            tid: h.tid,
            ppid: (h.flags & F_PPID_UNKNOWN == 0).then_some(h.ppid),
            uid: h.uid,
            gid: h.gid,
            euid: h.euid,
            egid: h.egid,
            suid: h.suid,
            sgid: h.sgid,
            fsuid: h.fsuid,
            fsgid: h.fsgid,
            auid: Id::from_raw(h.auid, auid_known),
            ses: Id::from_raw(h.ses, auid_known),
            comm: h.comm[..comm_len].to_vec(),
            exe,
            mntns: (h.flags & F_MNTNS_UNKNOWN == 0).then_some(h.mntns),
            chrooted,
            root,
            syscall: h.syscall,
            args: (h.flags & F_ARGS_PRESENT != 0).then_some(h.args),
            ret: h.ret,
            compat: h.flags & F_COMPAT != 0,
            rules,
            keys: Vec::new(),
            // The entry's key as the kernel computed it, from the same bytes.
            agg: (h.flags & F_AGG != 0).then(|| AggKey {
                auid: h.auid,
                kind: h.kind,
                failed: u32::from(h.ret < 0),
                _pad: 0,
                hash: tracer_common::agg::hash(&rec[HEADER_SIZE..]),
            }),
            detail,
        })
    }
}

/// One name of a generic syscall record: the host path it resolves to (lexically), and the
/// inode the kernel read for an fd.
fn name(n: &NameRec, path: &[u8], base: &[u8], chrooted: bool, root: &[u8]) -> Name {
    let base_unknown = n.flags & NAME_BASE_UNKNOWN != 0 && !path.starts_with(b"/");
    let host_path = if n.kind == NAME_FD || path.is_empty() {
        path.to_vec()
    } else if path.starts_with(b"/") {
        if chrooted && !root.is_empty() { join(root, &path[1..]) } else { normalize(path) }
    } else if base_unknown {
        path.to_vec()
    } else {
        join(base, path)
    };
    let inode =
        (n.flags & NAME_INODE != 0).then_some(Inode { uid: n.uid, gid: n.gid, mode: n.mode, ino: n.ino, dev: n.dev });
    Name { host_path, name: path.to_vec(), fd: n.kind == NAME_FD, base_unknown, inode }
}

/// NUL-separated argv (as in /proc/PID/cmdline) to a list; a missing final NUL (a cut
/// blob) still yields the partial last argument.
/// The peer the kernel read from the sender's connection socket; an IPv4-mapped IPv6 peer
/// (a dual-stack listener) is the IPv4 address it maps.
fn log_peer(b: &SshLogBody) -> Result<LogPeer, DecodeError> {
    match b.peer_status {
        PEER_FOUND => {}
        PEER_AMBIGUOUS => return Ok(LogPeer::Ambiguous),
        _ => return Ok(LogPeer::None),
    }
    let ip = match b.peer_family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(b.peer_addr[0], b.peer_addr[1], b.peer_addr[2], b.peer_addr[3])),
        AF_INET6 => {
            let v6 = Ipv6Addr::from(b.peer_addr);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        other => return Err(DecodeError::Family(other)),
    };
    Ok(LogPeer::Found(std::net::SocketAddr::new(ip, b.peer_port)))
}

pub(crate) fn split_argv(blob: &[u8]) -> Vec<Vec<u8>> {
    let blob = blob.strip_suffix(b"\0").unwrap_or(blob);
    if blob.is_empty() {
        return Vec::new();
    }
    blob.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: aya::Pod>(v: &T) -> &[u8] {
        // SAFETY: a Pod has no implicit padding, so all size_of::<T>() bytes are initialised;
        // the slice borrows v.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
    }

    fn record(kind: EventKind, flags: u32, body: &[u8], strings: &[&[u8]], exe_len: u16, root_len: u16) -> Vec<u8> {
        let mut h = Header {
            kind: kind as u32,
            flags,
            tgid: 42,
            tid: 43,
            auid: 7005,
            ses: 3,
            exe_len,
            root_len,
            ..Default::default()
        };
        h.comm[..4].copy_from_slice(b"test");
        let mut v = bytes_of(&h).to_vec();
        v.extend_from_slice(body);
        for s in strings {
            v.extend_from_slice(s);
        }
        let size = v.len() as u32;
        v[std::mem::offset_of!(Header, size)..][..4].copy_from_slice(&size.to_ne_bytes());
        v
    }

    #[test]
    fn decodes_exec_with_argv() {
        let body = ExecBody { argv_len: 11, filename_len: 9, cwd_len: 4, ..Default::default() };
        let rec = record(
            EventKind::Exec,
            F_EXE_PRESENT,
            bytes_of(&body),
            &[b"/bin/true", b"/bin/true", b"/tmp", b"true\0-x\0y z\0"],
            9,
            0,
        );
        let ev = Decoder::new().decode(&rec).unwrap();
        assert_eq!(ev.auid, Id::Set(7005));
        assert_eq!(ev.comm, b"test");
        assert_eq!(ev.exe.as_deref(), Some(&b"/bin/true"[..]));
        let Detail::Exec(e) = ev.detail else { panic!() };
        assert_eq!(e.argv, vec![b"true".to_vec(), b"-x".to_vec(), b"y z".to_vec()]);
        assert_eq!(e.cwd, b"/tmp");
    }

    #[test]
    fn decodes_relative_open_against_base() {
        let body = OpenBody { flags: 0, mode: 0, dfd: -100, path_len: 8, base_len: 8, ..Default::default() };
        let rec = record(EventKind::Open, 0, bytes_of(&body), &[b"../a/./b", b"/tmp/dir"], 0, 0);
        let ev = Decoder::new().decode(&rec).unwrap();
        let Detail::Open(o) = ev.detail else { panic!() };
        assert_eq!(o.host_path, b"/tmp/a/b");
        assert_eq!(o.name, b"../a/./b");
    }

    #[test]
    fn chrooted_absolute_open_is_joined_to_root() {
        let body = OpenBody { flags: 0, mode: 0, dfd: -100, path_len: 13, base_len: 0, ..Default::default() };
        let rec = record(EventKind::Open, F_CHROOTED, bytes_of(&body), &[b"/srv/jail", b"/etc/hostname"], 0, 9);
        let ev = Decoder::new().decode(&rec).unwrap();
        assert_eq!(ev.root, b"/srv/jail");
        let Detail::Open(o) = &ev.detail else { panic!() };
        assert_eq!(o.host_path, b"/srv/jail/etc/hostname");
        assert_eq!(ev.in_root(&o.host_path), b"/etc/hostname");
    }

    /// `tracer ci`'s kinds: exit status and signal, connect outcome, DNS message, listen.
    #[test]
    fn decodes_ci_kinds() {
        let d = |kind, body: &[u8], strings: &[&[u8]]| Decoder::new().decode(&record(kind, 0, body, strings, 0, 0));
        let ev = d(EventKind::Exit, bytes_of(&ExitBody { code: 3 << 8, known: 1 }), &[]).unwrap();
        let Detail::Exit(x) = ev.detail else { panic!() };
        assert_eq!((x.status(), x.signal()), (Some(3), None));
        let ev = d(EventKind::Exit, bytes_of(&ExitBody { code: 15, known: 1 }), &[]).unwrap();
        let Detail::Exit(x) = ev.detail else { panic!() };
        assert_eq!((x.status(), x.signal()), (None, Some(15)));
        let ev = d(EventKind::Exit, bytes_of(&ExitBody { code: 0, known: 0 }), &[]).unwrap();
        let Detail::Exit(x) = ev.detail else { panic!() };
        assert_eq!((x.status(), x.signal()), (None, None));
        let mut o = OutcomeBody { family: AF_INET, port: 443, established: 1, ..Default::default() };
        o.addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        let ev = d(EventKind::ConnectOutcome, bytes_of(&o), &[]).unwrap();
        let peer = Peer::Inet { address: "10.0.0.1".parse().unwrap(), port: 443 };
        assert_eq!(ev.detail, Detail::ConnectOutcome(ConnectOutcome { peer, established: true }));
        let b = DnsBody { fd: 5, dir: DIR_SEND, total: 600, len: 3 };
        let ev = d(EventKind::Dns, bytes_of(&b), &[b"abc"]).unwrap();
        assert_eq!(ev.detail, Detail::Dns(DnsMsg { fd: 5, sent: true, data: b"abc".to_vec(), truncated: true }));
        // A length past the record is an error, not a read past it.
        let b = DnsBody { fd: 5, dir: DIR_SEND, total: 600, len: 300 };
        assert!(d(EventKind::Dns, bytes_of(&b), &[b"abc"]).is_err());
        let l = ListenBody { fd: 4, family: AF_INET6, port: 8080, addr: [0; 16] };
        let ev = d(EventKind::Listen, bytes_of(&l), &[]).unwrap();
        assert_eq!(ev.detail, Detail::Listen(Listen { fd: 4, local: "[::]:8080".parse().unwrap() }));
        let l = ListenBody { family: 99, ..l };
        assert!(d(EventKind::Listen, bytes_of(&l), &[]).is_err());
    }

    #[test]
    fn decodes_connect_families() {
        let mut body = ConnectBody { fd: 3, family: AF_INET, port: 9, ..Default::default() };
        body.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let ev = Decoder::new().decode(&record(EventKind::Connect, 0, bytes_of(&body), &[], 0, 0)).unwrap();
        assert_eq!(
            ev.detail,
            Detail::Connect(Connect {
                fd: 3,
                peer: Peer::Inet { address: "127.0.0.1".parse().unwrap(), port: 9 },
                unix_file: None
            })
        );
        let body = ConnectBody { fd: 3, family: AF_UNIX, path_len: 12, ..Default::default() };
        let ev = Decoder::new()
            .decode(&record(EventKind::Connect, 0, bytes_of(&body), &[b"/run/s\0junk\xff"], 0, 0))
            .unwrap();
        let Detail::Connect(c) = ev.detail else { panic!() };
        assert_eq!(c.peer, Peer::Unix { path: b"/run/s".to_vec() }, "a pathname ends at its NUL, whatever follows");
        assert_eq!(c.unix_file, None, "no socket file from the kernel");
        let file = InodeKey { ino: 42, dev: 8 << 20 | 1, _pad: 0 };
        let body = ConnectBody { fd: 3, family: AF_UNIX, path_len: 6, unix_file: file, ..Default::default() };
        let ev = Decoder::new().decode(&record(EventKind::Connect, 0, bytes_of(&body), &[b"/run/s"], 0, 0)).unwrap();
        let Detail::Connect(c) = ev.detail else { panic!() };
        assert_eq!(c.unix_file, Some(file), "the socket file the kernel saw");
        let body = ConnectBody { fd: 3, family: AF_UNIX, path_len: 6, ..Default::default() };
        let ev = Decoder::new().decode(&record(EventKind::Connect, 0, bytes_of(&body), &[b"\0abs\0\0"], 0, 0)).unwrap();
        let Detail::Connect(c) = ev.detail else { panic!() };
        assert_eq!(c.peer, Peer::Unix { path: b"\0abs\0\0".to_vec() }, "abstract names keep every byte");
    }

    #[test]
    fn decodes_sshlog_peers() {
        let log = |status, family, addr: [u8; 16]| {
            let body = SshLogBody {
                via: VIA_SENDTO,
                total: 3,
                len: 3,
                peer_status: status,
                peer_family: family,
                peer_port: 50022,
                peer_addr: addr,
                ..Default::default()
            };
            match Decoder::new().decode(&record(EventKind::SshLog, 0, bytes_of(&body), &[b"msg"], 0, 0)) {
                Ok(Event { detail: Detail::Log(l), .. }) => Ok(l.peer),
                Ok(_) => panic!(),
                Err(e) => Err(e),
            }
        };
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(log(PEER_FOUND, AF_INET, v4), Ok(LogPeer::Found("192.0.2.7:50022".parse().unwrap())));
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(log(PEER_FOUND, AF_INET6, mapped.octets()), Ok(LogPeer::Found("192.0.2.7:50022".parse().unwrap())));
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        assert_eq!(log(PEER_FOUND, AF_INET6, v6.octets()), Ok(LogPeer::Found("[2001:db8::7]:50022".parse().unwrap())));
        assert_eq!(log(PEER_AMBIGUOUS, 0, [0; 16]), Ok(LogPeer::Ambiguous));
        assert_eq!(log(0, 0, [0; 16]), Ok(LogPeer::None));
        assert_eq!(log(PEER_FOUND, 1, [0; 16]), Err(DecodeError::Family(1)));
    }

    #[test]
    fn rejects_malformed() {
        let mut d = Decoder::new();
        assert_eq!(d.decode(&[0u8; 10]), Err(DecodeError::Short(10)));
        let body = ExecBody { argv_len: 1000, filename_len: 0, cwd_len: 0, ..Default::default() };
        let rec = record(EventKind::Exec, 0, bytes_of(&body), &[b"x"], 0, 0);
        assert!(matches!(d.decode(&rec), Err(DecodeError::Overrun { .. })));
        let rec = record(EventKind::Exec, 0, &[], &[], 0, 0);
        let mut bad = rec.clone();
        bad[0] = 99;
        assert_eq!(d.decode(&bad), Err(DecodeError::Kind(99)));
    }

    #[test]
    fn argv_split() {
        assert_eq!(split_argv(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_argv(b"a\0\0b\0"), vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]);
        assert_eq!(split_argv(b"a\0b"), vec![b"a".to_vec(), b"b".to_vec()]);
    }

    /// A generic syscall record with the candidate-rules trailer: names joined to their
    /// bases, the trailer stripped into `rules`, and a record too short for its trailer an
    /// error, not a panic.
    #[test]
    fn syscall_record_and_rules_trailer() {
        use tracer_common::rules::{NAME_PATH, NAME_PATH_AT};
        let mut b = SyscallBody::default();
        b.names[0] = NameRec { kind: NAME_PATH, path_len: 7, base_len: 5, ..Default::default() };
        b.names[1] = NameRec { kind: NAME_PATH_AT, path_len: 11, ..Default::default() };
        b.cwd_len = 5;
        let mut bits = RuleBits::default();
        bits.words[1] = 1 << 3;
        let rec = record(
            EventKind::Syscall,
            F_RULES | F_COMPAT,
            bytes_of(&b),
            &[b"a/../b2", b"/home", b"/etc/shadow", b"/home", bytes_of(&bits)],
            0,
            0,
        );
        let mut d = Decoder::new();
        d.resolve_exe = false;
        let ev = d.decode(&rec).unwrap();
        assert_eq!(ev.rules, Some(bits));
        assert!(ev.compat);
        let Detail::Syscall(c) = &ev.detail else { panic!("{ev:?}") };
        assert_eq!(c.names.len(), 2);
        assert_eq!(c.names[0].host_path, b"/home/b2");
        assert_eq!(c.names[0].name, b"a/../b2");
        assert_eq!(c.names[1].host_path, b"/etc/shadow");
        assert_eq!(c.cwd.as_deref(), Some(b"/home".as_slice()));
        // Claims a trailer it has no room for.
        let short = record(EventKind::Syscall, F_RULES, bytes_of(&b), &[], 0, 0);
        assert!(d.decode(&short[..HEADER_SIZE + 8]).is_err());
        assert!(d.decode(&short).is_err());
    }
}
