//! `--format audit`: events as the kernel audit subsystem would have logged them, in the
//! raw audit.log format, so the stock ausearch/aureport read the output (`-if FILE`).
//!
//! One event is a group of records sharing `msg=audit(SECONDS.MILLIS:SERIAL)`, in the
//! kernel's order: SYSCALL, EXECVE, SOCKADDR, CWD, PATH, PROCTITLE. No EOE record: auditd
//! does not write those to its log. What the kernel records but the tracer is not sent is
//! written in audit's own unknown form (tty=(none), exe=(null), `?` file capabilities, no
//! inode fields, as for a failed lookup) or, for syscall arguments that are pointers, 0.

mod encode;
mod nametypes;

use std::{
    collections::HashMap,
    io::{self, Write},
};

use tracer_common::open::AT_FDCWD;

use self::encode::{execve_records, hex, proctitle, sockaddr, untrusted};
use super::Sink;
use crate::event::{Detail, Event, Open};

/// AUDIT_ARCH_X86_64: the tracer's syscall numbers are x86_64 ones.
const ARCH_X86_64: &str = "c000003e";
/// AUDIT_ARCH_I386: a 32-bit call (`trace --rules` reports them with i386 numbers).
const ARCH_I386: &str = "40000003";
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
/// Command lines remembered per process for PROCTITLE (cleared when full, like the
/// decoder's exe cache).
const TITLE_CACHE_MAX: usize = 65536;
/// Longest key auditctl accepts (AUDIT_MAX_KEY_LEN).
pub(crate) const KEY_MAX: usize = 256;

/// `--key`: what auditctl -k accepts, narrowed to what the kernel logs quoted (printable
/// ASCII, no space or double quote) so `ausearch -k NAME` matches it literally.
pub(crate) fn parse_key(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > KEY_MAX {
        return Err(format!("a key is 1 to {KEY_MAX} bytes (audit's limit), got {}", s.len()));
    }
    if let Some(c) = s.chars().find(|&c| c == '"' || !c.is_ascii_graphic()) {
        return Err(format!("{c:?} is not allowed in a key: use printable ASCII without spaces or double quotes"));
    }
    Ok(s.to_string())
}

pub(crate) struct AuditSink<W: Write> {
    out: W,
    key: Option<String>,
    serial: u64,
    buf: Vec<u8>,
    /// pid -> command line (NUL-separated), from its exec or /proc; None: unreadable.
    titles: HashMap<u32, Option<Vec<u8>>>,
}

impl<W: Write> AuditSink<W> {
    pub(crate) fn new(out: W, key: Option<String>) -> Self {
        Self { out, key, serial: 0, buf: Vec::with_capacity(8192), titles: HashMap::new() }
    }

    /// The process's command line for PROCTITLE: the argv of an exec that succeeded is
    /// the new one; anything else runs under the command line the process already had.
    fn title(&mut self, ev: &Event) -> Option<Vec<u8>> {
        if self.titles.len() >= TITLE_CACHE_MAX {
            self.titles.clear();
        }
        if let Detail::Exec(e) = &ev.detail
            && ev.ok()
        {
            let mut t = Vec::new();
            for a in &e.argv {
                t.extend_from_slice(a);
                t.push(0);
            }
            self.titles.insert(ev.pid, Some(t));
        }
        self.titles
            .entry(ev.pid)
            .or_insert_with(|| std::fs::read(format!("/proc/{}/cmdline", ev.pid)).ok().filter(|c| !c.is_empty()))
            .clone()
    }
}

/// `item=N name=... nametype=T` plus audit's unknown file capabilities; no inode, dev,
/// mode or owner fields, which the kernel also leaves out when it has no inode.
fn path_record(out: &mut Vec<u8>, item: usize, name: &[u8], nametype: &str) {
    let _ = write!(out, "item={item} name=");
    untrusted(out, name);
    let _ = write!(out, " nametype={nametype} cap_fe=? cap_fver=? cap_fp=? cap_fi=?");
}

/// The directory a relative name was resolved against, recovered from the resolved path:
/// strip the name's components. None when the name climbs (`..`) above its own components,
/// which normalisation made unrecoverable.
fn base_dir(resolved: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut depth = 0usize;
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1)?,
            _ => depth += 1,
        }
    }
    let mut base = resolved;
    for _ in 0..depth {
        let i = base.iter().rposition(|&b| b == b'/')?;
        base = &base[..i];
    }
    Some(if base.is_empty() { b"/".to_vec() } else { base.to_vec() })
}

/// (cwd, name) for an open's CWD and PATH records. The kernel logs the name as passed
/// and the process cwd, which `--format audit` asks the kernel programs to send with every
/// open. A name relative to a directory fd is logged resolved, as the kernel's record (the
/// name and the unrelated cwd) would not say which file it was.
fn open_names(ev: &Event, o: &Open) -> (Option<Vec<u8>>, Vec<u8>) {
    let cwd = o.cwd.as_ref().map(|c| ev.in_root(c).to_vec());
    if o.name.starts_with(b"/") || o.base_unknown {
        return (cwd, o.name.clone());
    }
    if o.dfd == AT_FDCWD && cwd.is_some() {
        return (cwd, o.name.clone());
    }
    if o.dfd == AT_FDCWD
        && let Some(base) = base_dir(&o.host_path, &o.name)
    {
        return (Some(ev.in_root(&base).to_vec()), o.name.clone());
    }
    (None, ev.in_root(&o.host_path).to_vec())
}

/// Syscall arguments a0..a3: the registers the kernel programs read at syscall exit; for
/// events without them (successful execs: the registers were reset for the new image),
/// what the event carries, pointers as 0.
fn args(ev: &Event, saddr_len: usize) -> [u64; 4] {
    if let Some(a) = ev.args {
        return a;
    }
    match &ev.detail {
        Detail::Open(o) => match ev.syscall {
            2 => [0, o.flags.into(), o.mode.into(), 0], // open(name, flags, mode)
            85 => [0, o.mode.into(), 0, 0],             // creat(name, mode)
            257 => [(o.dfd as u32).into(), 0, o.flags.into(), o.mode.into()], // openat
            _ => [(o.dfd as u32).into(), 0, 0, 0],      // openat2(dfd, name, how, size)
        },
        Detail::Connect(c) => [(c.fd as u32).into(), 0, saddr_len as u64, 0],
        Detail::Exec(_)
        | Detail::Log(_)
        | Detail::Syscall(_)
        | Detail::Exit(_)
        | Detail::ConnectOutcome(_)
        | Detail::Dns(_)
        | Detail::Listen(_) => [0; 4],
    }
}

/// Renders one event's records into `out` (nothing for sshd log captures).
pub(crate) fn render(out: &mut Vec<u8>, ev: &Event, serial: u64, key: Option<&str>, title: Option<&[u8]>) {
    let secs = ev.time_ns / 1_000_000_000;
    let millis = ev.time_ns % 1_000_000_000 / 1_000_000;
    let stamp = format!("audit({secs}.{millis:03}:{serial}):");
    let record = |out: &mut Vec<u8>, ty: &str, body: &[u8]| {
        let _ = write!(out, "type={ty} msg={stamp} ");
        out.extend_from_slice(body);
        out.push(b'\n');
    };

    let mut cwd: Option<Vec<u8>> = None;
    let mut names: Vec<(Vec<u8>, &str)> = Vec::new();
    let mut saddr: Option<Vec<u8>> = None;
    match &ev.detail {
        Detail::Exec(e) => {
            cwd = Some(ev.in_root(&e.cwd).to_vec());
            names.push((e.filename.clone(), if ev.ok() { "NORMAL" } else { "UNKNOWN" }));
        }
        Detail::Open(o) => {
            let (c, name) = open_names(ev, o);
            cwd = c;
            let t = match (ev.ok(), o.flags & (O_CREAT | O_EXCL) == (O_CREAT | O_EXCL)) {
                (false, _) => "UNKNOWN",
                // Only O_EXCL proves the call created the file.
                (true, true) => "CREATE",
                (true, false) => "NORMAL",
            };
            names.push((name, t));
        }
        Detail::Connect(c) => saddr = Some(sockaddr(&c.peer)),
        Detail::Syscall(c) => {
            cwd = c.cwd.as_ref().map(|c| ev.in_root(c).to_vec());
            let arch = if ev.compat { tracer_rules::Arch::B32 } else { tracer_rules::Arch::B64 };
            let types = nametypes::of(tracer_rules::syscalls::name(arch, ev.syscall).unwrap_or(""), ev.ok());
            for (i, n) in c.names.iter().enumerate() {
                let name = if n.fd || n.base_unknown { n.name.clone() } else { ev.in_root(&n.host_path).to_vec() };
                names.push((name, types.get(i).copied().unwrap_or("NORMAL")));
            }
            if !c.sockaddr.is_empty() {
                saddr = Some(c.sockaddr.clone());
            }
        }
        Detail::Log(_) | Detail::Exit(_) | Detail::ConnectOutcome(_) | Detail::Dns(_) | Detail::Listen(_) => return,
    }

    let a = args(ev, saddr.as_ref().map_or(0, Vec::len));
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(
        format!(
            "arch={} syscall={} success={} exit={} a0={:x} a1={:x} a2={:x} a3={:x} items={} \
             ppid={} pid={} auid={} uid={} gid={} euid={} suid={} fsuid={} egid={} sgid={} fsgid={} \
             tty=(none) ses={} comm=",
            if ev.compat { ARCH_I386 } else { ARCH_X86_64 },
            ev.syscall,
            if ev.ok() { "yes" } else { "no" },
            ev.ret,
            a[0],
            a[1],
            a[2],
            a[3],
            names.len(),
            ev.ppid.unwrap_or(0),
            ev.pid,
            ev.auid.raw(),
            ev.uid,
            ev.gid,
            ev.euid,
            ev.suid,
            ev.fsuid,
            ev.egid,
            ev.sgid,
            ev.fsgid,
            ev.ses.raw(),
        )
        .as_bytes(),
    );
    untrusted(&mut b, &ev.comm);
    b.extend_from_slice(b" exe=");
    match &ev.exe {
        Some(exe) => untrusted(&mut b, ev.in_root(exe)),
        None => b.extend_from_slice(b"(null)"),
    }
    b.extend_from_slice(b" key=");
    match (ev.keys.as_slice(), key) {
        // Several keys are one string to audit, joined by \x01 (AUDIT_KEY_SEPARATOR), which
        // makes the value hex-encoded like any string with a control character.
        ([], Some(k)) => untrusted(&mut b, k.as_bytes()),
        ([], None) => b.extend_from_slice(b"(null)"),
        (keys, _) => untrusted(&mut b, keys.join("\x01").as_bytes()),
    }
    record(out, "SYSCALL", &b);

    if let Detail::Exec(e) = &ev.detail {
        for body in execve_records(&e.argv, e.argc) {
            record(out, "EXECVE", &body);
        }
    }
    if let Some(sa) = saddr {
        b.clear();
        b.extend_from_slice(b"saddr=");
        hex(&mut b, &sa);
        record(out, "SOCKADDR", &b);
    }
    if let Some(cwd) = cwd {
        b.clear();
        b.extend_from_slice(b"cwd=");
        untrusted(&mut b, &cwd);
        record(out, "CWD", &b);
    }
    for (i, (name, t)) in names.iter().enumerate() {
        b.clear();
        path_record(&mut b, i, name, t);
        record(out, "PATH", &b);
    }
    b.clear();
    b.extend_from_slice(b"proctitle=");
    proctitle(&mut b, title);
    record(out, "PROCTITLE", &b);
}

impl<W: Write> Sink for AuditSink<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        // sshd's captured log lines (the guard's source) are not syscall audit events.
        if matches!(
            ev.detail,
            Detail::Log(_) | Detail::Exit(_) | Detail::ConnectOutcome(_) | Detail::Dns(_) | Detail::Listen(_)
        ) {
            return Ok(());
        }
        self.serial += 1;
        let title = self.title(ev);
        self.buf.clear();
        render(&mut self.buf, ev, self.serial, self.key.as_deref(), title.as_deref());
        self.out.write_all(&self.buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Connect, Exec, Id, Peer};

    fn event(detail: Detail, ret: i64, syscall: u32) -> Event {
        Event {
            time_ns: 1_700_000_000_123_456_789,
            pid: 42,
            tid: 42,
            ppid: Some(7),
            uid: 7005,
            gid: 7006,
            euid: 7005,
            egid: 7006,
            suid: 7005,
            sgid: 7006,
            fsuid: 7005,
            fsgid: 7006,
            auid: Id::Set(7005),
            ses: Id::Unset,
            comm: b"work load".to_vec(),
            exe: Some(b"/usr/bin/workload".to_vec()),
            mntns: Some(1),
            chrooted: Some(false),
            root: b"/".to_vec(),
            syscall,
            args: None,
            ret,
            compat: false,
            rules: None,
            keys: Vec::new(),
            agg: None,
            detail,
        }
    }

    fn lines(ev: &Event, key: Option<&str>, title: Option<&[u8]>) -> Vec<String> {
        let mut out = Vec::new();
        render(&mut out, ev, 5, key, title);
        String::from_utf8(out).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn exec_records_in_kernel_order() {
        let argv = vec![b"/bin/echo".to_vec(), b"a b".to_vec()];
        let ev = event(
            Detail::Exec(Exec {
                filename: b"/bin/echo".to_vec(),
                cwd: b"/tmp".to_vec(),
                argv,
                argv_truncated: false,
                argc: Some(2),
            }),
            0,
            59,
        );
        let l = lines(&ev, Some("k1"), Some(b"/bin/echo\0a b\0"));
        assert_eq!(
            l,
            [
                "type=SYSCALL msg=audit(1700000000.123:5): arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 \
                 items=1 ppid=7 pid=42 auid=7005 uid=7005 gid=7006 euid=7005 suid=7005 fsuid=7005 egid=7006 sgid=7006 \
                 fsgid=7006 tty=(none) ses=4294967295 comm=776F726B206C6F6164 exe=\"/usr/bin/workload\" key=\"k1\"",
                "type=EXECVE msg=audit(1700000000.123:5): argc=2 a0=\"/bin/echo\" a1=612062",
                "type=CWD msg=audit(1700000000.123:5): cwd=\"/tmp\"",
                "type=PATH msg=audit(1700000000.123:5): item=0 name=\"/bin/echo\" nametype=NORMAL cap_fe=? cap_fver=? cap_fp=? cap_fi=?",
                "type=PROCTITLE msg=audit(1700000000.123:5): proctitle=2F62696E2F6563686F00612062",
            ]
        );
    }

    fn open(name: &[u8], host: &[u8], dfd: i32, flags: u32) -> Detail {
        Detail::Open(Open {
            host_path: host.to_vec(),
            name: name.to_vec(),
            flags,
            mode: 0o644,
            dfd,
            base_unknown: false,
            cwd: None,
        })
    }

    #[test]
    fn failed_open_is_unknown_path_with_errno() {
        let mut ev = event(open(b"/etc/sha dow", b"/etc/sha dow", AT_FDCWD, 0), -13, 2);
        ev.exe = None;
        let l = lines(&ev, None, None);
        assert!(l[0].contains(" syscall=2 success=no exit=-13 a0=0 a1=0 a2=1a4 a3=0 items=1 "), "{}", l[0]);
        assert!(l[0].ends_with(" exe=(null) key=(null)"), "{}", l[0]);
        assert_eq!(
            l[1],
            "type=PATH msg=audit(1700000000.123:5): item=0 name=2F6574632F73686120646F77 nametype=UNKNOWN cap_fe=? cap_fver=? cap_fp=? cap_fi=?"
        );
        assert_eq!(l[2], "type=PROCTITLE msg=audit(1700000000.123:5): proctitle=(null)");
        assert_eq!(l.len(), 3, "no CWD: the cwd of an absolute open is not known");
    }

    #[test]
    fn relative_opens_get_cwd_or_resolved_names() {
        let ev = event(open(b"sub/./f", b"/home/u/sub/f", AT_FDCWD, 0), 3, 257);
        let l = lines(&ev, None, None);
        assert!(l[0].contains(" a0=ffffff9c a1=0 a2=0 a3=1a4 "), "{}", l[0]);
        assert!(l[1].ends_with("cwd=\"/home/u\""), "{}", l[1]);
        assert!(l[2].contains("name=\"sub/./f\" nametype=NORMAL"), "{}", l[2]);
        // `..` above the name's own components: the cwd is lost, the resolved path is used.
        let l = lines(&event(open(b"../x", b"/home/x", AT_FDCWD, 0), 3, 257), None, None);
        assert!(l[1].contains("name=\"/home/x\""), "{l:?}");
        // dirfd-relative: the resolved path, no CWD.
        let l = lines(&event(open(b"f", b"/srv/d/f", 5, O_CREAT | O_EXCL), 4, 257), None, None);
        assert!(l[1].contains("item=0 name=\"/srv/d/f\" nametype=CREATE"), "{l:?}");
        assert_eq!(base_dir(b"/a/b/c", b"b/./c"), Some(b"/a".to_vec()));
        assert_eq!(base_dir(b"/c", b"c"), Some(b"/".to_vec()));
        assert_eq!(base_dir(b"/a/c", b"x/../c"), Some(b"/a".to_vec()));
        assert_eq!(base_dir(b"/a/c", b"../c"), None);
    }

    #[test]
    fn chrooted_paths_are_shown_as_the_process_sees_them() {
        let mut ev = event(open(b"etc/passwd", b"/srv/jail/etc/passwd", AT_FDCWD, 0), 3, 257);
        ev.root = b"/srv/jail".to_vec();
        ev.exe = Some(b"/srv/jail/bin/cat".to_vec());
        let l = lines(&ev, None, None);
        assert!(l[0].contains(" exe=\"/bin/cat\" "), "{}", l[0]);
        assert!(l[1].ends_with("cwd=\"/\""), "{}", l[1]);
    }

    #[test]
    fn connect_has_sockaddr() {
        let ev = event(
            Detail::Connect(Connect {
                fd: 3,
                peer: Peer::Inet { address: "127.0.0.1".parse().unwrap(), port: 9 },
                unix_file: None,
            }),
            -111,
            42,
        );
        let l = lines(&ev, None, Some(b"workload\0"));
        assert!(l[0].contains(" syscall=42 success=no exit=-111 a0=3 a1=0 a2=10 a3=0 items=0 "), "{}", l[0]);
        assert_eq!(l[1], "type=SOCKADDR msg=audit(1700000000.123:5): saddr=020000097F0000010000000000000000");
        assert_eq!(l[2], "type=PROCTITLE msg=audit(1700000000.123:5): proctitle=\"workload\"");
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("exec-watch_1"), Ok("exec-watch_1".into()));
        assert!(parse_key("").is_err());
        assert!(parse_key("with space").is_err());
        assert!(parse_key("quo\"te").is_err());
        assert!(parse_key("tab\t").is_err());
        assert!(parse_key("ünï").is_err());
        assert!(parse_key(&"k".repeat(KEY_MAX)).is_ok());
        assert!(parse_key(&"k".repeat(KEY_MAX + 1)).is_err());
    }

    #[test]
    fn serials_increase_and_titles_follow_exec() {
        let mut sink = AuditSink::new(Vec::new(), None);
        let exec = event(
            Detail::Exec(Exec {
                filename: b"/bin/x".to_vec(),
                cwd: b"/".to_vec(),
                argv: vec![b"x".to_vec()],
                argv_truncated: false,
                argc: None,
            }),
            0,
            59,
        );
        sink.event(&exec).unwrap();
        sink.event(&event(open(b"/f", b"/f", AT_FDCWD, 0), 3, 2)).unwrap();
        let text = String::from_utf8(sink.out.clone()).unwrap();
        assert!(text.contains("audit(1700000000.123:1): proctitle=\"x\""), "{text}");
        assert!(text.contains("audit(1700000000.123:2): proctitle=\"x\""), "{text}");
    }
}
