//! The kernel's own audit decides as `Compiled::candidates` + `decide` predict: rule sets are
//! loaded with auditctl, this process makes calls, and the SYSCALL records the kernel
//! multicasts to audit readers (the netlink group journald reads; no auditd is involved)
//! carry the keys tracer_rules predicts, or no record where it predicts none. Audit's state
//! is machine-wide: /tmp/auditd.lock is held, the rules deleted and `-e` restored after.

use thiserror as _;

use std::{
    ffi::CString,
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_rules::{Arch, CallFacts, Facts, Ids, Name, syscalls};

/// The tests of this file run one at a time: their rules select this process's calls, so
/// one test's files must not be made while the other's audit window is open.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn auditctl(args: &[&str]) -> String {
    // stdin piped, not /dev/null: this process opens nothing while audit is on but its calls.
    let out = Command::new("auditctl").args(args).stdin(Stdio::piped()).output().expect("auditctl");
    assert!(out.status.success(), "auditctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Holds the lock; on drop deletes the rules and restores `-e`.
struct Audit {
    lock: File,
    enabled: String,
}

impl Audit {
    fn take() -> Audit {
        let lock = File::options().create(true).append(true).open("/tmp/auditd.lock").expect("lock file");
        // SAFETY: flock on a descriptor this File owns.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let status = auditctl(&["-s"]);
        let enabled = status.lines().find_map(|l| l.strip_prefix("enabled ")).unwrap_or("0").trim().to_string();
        assert_ne!(enabled, "2", "audit's rules are locked (-e 2) on this machine");
        auditctl(&["-D"]);
        Audit { lock, enabled }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").args(["-e", &self.enabled]).stdin(Stdio::piped()).output();
        let _ = Command::new("auditctl").arg("-D").stdin(Stdio::piped()).output();
        // SAFETY: as above.
        unsafe { libc::flock(self.lock.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// A reader of audit's multicast group (AUDIT_NLGRP_READLOG).
struct Reader(i32);

impl Reader {
    fn open() -> Reader {
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_AUDIT) };
        assert!(fd >= 0, "netlink audit socket: {}", std::io::Error::last_os_error());
        // SAFETY: an all-zero sockaddr_nl is valid; the fields are set below.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = 1;
        // SAFETY: sa is a sockaddr_nl of the size passed.
        let rc = unsafe { libc::bind(fd, (&raw const sa).cast(), size_of::<libc::sockaddr_nl>() as libc::socklen_t) };
        assert_eq!(rc, 0, "bind to audit's multicast group: {}", std::io::Error::last_os_error());
        Reader(fd)
    }

    /// SYSCALL records of `pid` until nothing comes for a while: (syscall, key).
    fn syscalls_of(&self, pid: u32) -> Vec<(u32, Option<String>)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_millis(500) {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n <= 0 {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            last = Instant::now();
            let mut msg = &buf[..n as usize];
            while msg.len() >= 16 {
                let len = (u32::from_ne_bytes(msg[0..4].try_into().unwrap()) as usize).clamp(16, msg.len());
                let kind = u16::from_ne_bytes(msg[4..6].try_into().unwrap());
                let text = String::from_utf8_lossy(&msg[16..len]);
                if kind == 1300 && field(&text, "pid") == Some(pid.to_string()) {
                    let nr = field(&text, "syscall").and_then(|s| s.parse().ok()).unwrap_or(u32::MAX);
                    let key = field(&text, "key").filter(|k| k != "(null)").map(|k| k.trim_matches('"').to_string());
                    out.push((nr, key));
                }
                msg = &msg[((len + 3) & !3).min(msg.len())..];
            }
        }
        out
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours.
        unsafe { libc::close(self.0) };
    }
}

fn field(text: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=");
    let i = text.find(&pat)? + pat.len();
    Some(text[i..].split(' ').next().unwrap_or("").to_string())
}

/// One call this process makes, and what decide needs to know of it.
struct Op {
    name: &'static str,
    args: [u64; 4],
    names: Vec<PathBuf>,
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn make(op: &Op) -> i64 {
    let nr = i64::from(syscalls::number(Arch::B64, op.name).unwrap());
    let a = op.args.map(|v| v as i64);
    let path = op.names.last().map(|p| cpath(p)).unwrap_or_default();
    let first = op.names.first().map(|p| cpath(p)).unwrap_or_default();
    // SAFETY: raw syscalls on NUL-terminated paths this function owns and on an fd of the
    // test's; the fds an open returns are closed.
    unsafe {
        let ret = match op.name {
            "openat" => libc::syscall(nr, libc::AT_FDCWD, path.as_ptr(), a[2]),
            "unlink" | "rmdir" => libc::syscall(nr, path.as_ptr()),
            "renameat2" => libc::syscall(nr, libc::AT_FDCWD, first.as_ptr(), libc::AT_FDCWD, path.as_ptr(), 0),
            // On an fd: the arguments as given.
            "ftruncate" | "fallocate" => libc::syscall(nr, a[0], a[1], a[2], a[3]),
            _ => libc::syscall(nr, path.as_ptr(), a[1]),
        };
        let ret = if ret < 0 { -i64::from(*libc::__errno_location()) } else { ret };
        if op.name == "openat" && ret >= 0 {
            libc::close(ret as i32);
        }
        ret
    }
}

fn ids() -> Ids {
    let auid =
        std::fs::read_to_string("/proc/self/loginuid").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(u32::MAX);
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Ids { auid, uid, euid: uid, suid: uid, fsuid: uid, gid, egid: gid, sgid: gid, fsgid: gid }
}

#[test]
fn the_kernels_audit_decides_as_tracer_rules() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("tracer-rules-kernel-{}", std::process::id()));
    let sub = dir.join("d");
    std::fs::create_dir_all(&sub).unwrap();
    let f = dir.join("f");
    std::fs::write(&f, "x").unwrap();
    let theirs = dir.join("theirs");
    std::fs::write(&theirs, "x").unwrap();
    std::os::unix::fs::chown(&theirs, Some(1234), Some(1234)).unwrap();
    let pid = std::process::id();
    let (fs, ds) = (f.display().to_string(), sub.display().to_string());
    // An fd for the fd-only calls (ftruncate, fallocate), opened before any audit window.
    let held = File::options().write(true).open(dir.join("theirs")).unwrap();
    let hfd = held.as_raw_fd() as u64;
    let (r_old, r_new) = (dir.join("r-old"), dir.join("r-new"));
    let exe_path = std::env::current_exe().unwrap();
    let exe = exe_path.display();
    let m = std::fs::metadata(&exe_path).unwrap();
    let exe_id = (m.ino(), (libc::major(m.dev()) << 20) | libc::minor(m.dev()));
    let scenarios = [
        format!("-a never,exit -F arch=b64 -S openat -F pid={pid} -F a2&01\n-w {fs} -p wa -k watch\n"),
        format!("-w {fs} -p wa -k watch\n-a never,exit -F arch=b64 -S openat -F pid={pid} -F a2&01\n"),
        format!("-a always,exit -F arch=b64 -S openat,chmod -F pid={pid} -k exitlist\n-w {fs} -p wa -k watch\n"),
        format!(
            "-w {fs} -p r -k read\n-w {ds} -p w -k dirw\n-a always,exit -F arch=b64 -S unlink,mkdir,rmdir -F pid={pid} -k calls\n"
        ),
        format!(
            "-a always,exit -F arch=b64 -S all -F pid={pid} -F perm=a -k attr\n-a always,exit -F arch=b64 -S openat -F pid={pid} -F exit=-ENOENT -k enoent\n"
        ),
        format!(
            "-w {fs} -p w -k truncated\n-a always,exit -F arch=b64 -S chmod -F pid={pid} -F obj_uid=1234 -C auid!=obj_uid -k owner\n"
        ),
        format!("-a always,exit -F arch=b64 -S all -F pid={pid} -F perm=w -k w\n"),
        format!(
            "-a always,exit -F arch=b64 -S chmod -F pid={pid} -F exe={exe} -F obj_uid!=1234 -k exe\n\
             -a always,exit -F arch=b64 -S truncate,mkdir -F pid={pid} -F exe!={exe} -k notexe\n\
             -a always,exit -F arch=b64 -S truncate,mkdir,rmdir -F pid={pid} -F success=1 -k ok\n"
        ),
    ];
    let ops = |i: usize| -> Vec<Op> {
        let g = sub.join(format!("g{i}"));
        let missing = dir.join("missing");
        vec![
            Op { name: "openat", args: [0, 0, libc::O_WRONLY as u64, 0], names: vec![f.clone()] },
            Op { name: "openat", args: [0, 0, libc::O_RDONLY as u64, 0], names: vec![f.clone()] },
            Op { name: "chmod", args: [0, 0o644, 0, 0], names: vec![f.clone()] },
            Op { name: "mkdir", args: [0, 0o755, 0, 0], names: vec![sub.clone(), g.clone()] },
            Op { name: "rmdir", args: [0; 4], names: vec![sub.clone(), g] },
            Op { name: "openat", args: [0, 0, libc::O_RDONLY as u64, 0], names: vec![missing] },
            Op { name: "truncate", args: [0, 1, 0, 0], names: vec![f.clone()] },
            Op { name: "chmod", args: [0, 0o644, 0, 0], names: vec![theirs.clone()] },
            // audit's write class by number alone: renameat2, ftruncate and fallocate are in
            // it (the fd calls have no PATH item: no watch could match them).
            Op { name: "renameat2", args: [0; 4], names: vec![r_old.clone(), r_new.clone()] },
            Op { name: "ftruncate", args: [hfd, 1, 0, 0], names: vec![] },
            Op { name: "fallocate", args: [hfd, 0, 0, 16], names: vec![] },
        ]
    };
    let audit = Audit::take();
    let ids = ids();
    let mut predicted_events = 0;
    for (i, text) in scenarios.iter().enumerate() {
        std::fs::write(&r_old, "x").unwrap();
        let _ = std::fs::remove_file(&r_new);
        let rules = dir.join(format!("{i}.rules"));
        std::fs::write(&rules, text).unwrap();
        let compiled = tracer_rules::compile(&tracer_rules::load(std::slice::from_ref(&rules)).unwrap()).unwrap();
        auditctl(&["-D"]);
        for line in text.lines() {
            auditctl(&line.split_whitespace().collect::<Vec<_>>());
        }
        let reader = Reader::open();
        auditctl(&["-e", "1"]);
        let mut want = Vec::new();
        for op in ops(i) {
            let ret = make(&op);
            let nr = syscalls::number(Arch::B64, op.name).unwrap();
            let owners: Vec<Option<(u32, u32)>> =
                op.names.iter().map(|p| std::fs::symlink_metadata(p).ok().map(|m| (m.uid(), m.gid()))).collect();
            let bytes: Vec<Vec<u8>> = op.names.iter().map(|p| p.as_os_str().as_encoded_bytes().to_vec()).collect();
            let names: Vec<Name<'_>> = bytes.iter().zip(&owners).map(|(b, o)| Name { path: b, owner: *o }).collect();
            let call = CallFacts { nr, ret, ids, pid, args: op.args, exe: Some(exe_id), ..CallFacts::default() };
            let facts = Facts { arch: Arch::B64, nr, ret, ids: call.ids, names: &names };
            if let Some(r) = compiled.decide(&compiled.candidates(&call), &facts) {
                want.push((nr, compiled.keys(r).first().cloned()));
            }
        }
        auditctl(&["-e", &audit.enabled]);
        let got = reader.syscalls_of(pid);
        assert_eq!(got, want, "scenario {i} (syscall, key): the kernel (left) vs tracer_rules (right)\n{text}");
        eprintln!("scenario {i}: {} records, as predicted: {got:?}", got.len());
        predicted_events += want.len();
        auditctl(&["-D"]);
    }
    drop(audit);
    drop(held);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(predicted_events >= 10, "{predicted_events} events");
}

/// An i386 syscall from this 64-bit process (`int 0x80`); pointers must be below 4 GiB.
fn sys32(nr: u32, a: u32, b: u32, c: u32) -> i64 {
    let ret: u32;
    // SAFETY: int 0x80 enters the kernel's i386 entry; rbx (LLVM's) is swapped in and out
    // around it; the calls made here only read the path passed in `a`.
    unsafe {
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) u64::from(a) => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            in("edx") c,
        );
    }
    i64::from(ret.cast_signed())
}

/// Closes an fd an i386 open returned; the open's return stays the call's.
fn close32(ret: i64) -> i64 {
    if let Ok(fd) = u32::try_from(ret) {
        sys32(6, fd, 0, 0);
    }
    ret
}

/// A NUL-terminated copy of `p` in memory below 4 GiB (MAP_32BIT), for i386 calls.
fn low_path(p: &str) -> u32 {
    // SAFETY: a fresh private anonymous mapping; written below within its length.
    unsafe {
        let m = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        );
        assert_ne!(m, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(p.as_ptr(), m.cast::<u8>(), p.len());
        *m.cast::<u8>().add(p.len()) = 0;
        u32::try_from(m as usize).expect("MAP_32BIT")
    }
}

#[test]
fn b32_rules_take_i386_numbers_and_archless_numbers_apply_to_both() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("tracer-rules-kernel32-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("f");
    std::fs::write(&f, "x").unwrap();
    let pid = std::process::id();
    let text = format!(
        "-a always,exit -F arch=b32 -S chmod -F pid={pid} -k b32chmod\n-a always,exit -S unlink -F pid={pid} -k noarch\n\
         -w {} -p wa -k w32\n",
        f.display()
    );
    let rules = dir.join("r.rules");
    std::fs::write(&rules, &text).unwrap();
    let set = tracer_rules::load(std::slice::from_ref(&rules)).unwrap();
    let compiled = tracer_rules::compile(&set).unwrap();
    let (fpath, gone) = (low_path(&f.display().to_string()), low_path("/nonexistent-tracer-rules"));
    let audit = Audit::take();
    let ids = ids();
    for line in text.lines() {
        auditctl(&line.split_whitespace().collect::<Vec<_>>());
    }
    let reader = Reader::open();
    auditctl(&["-e", "1"]);
    let nr32 = |n| syscalls::number(Arch::B32, n).unwrap();
    let nr64 = |n| syscalls::number(Arch::B64, n).unwrap();
    // (compat, nr, ret): i386 chmod (15); i386 swapon (87, x86_64's unlink number); i386
    // unlink (10); x86_64 unlink (87); x86_64 chmod (90).
    let (wr, rd) = (libc::O_WRONLY as u32, libc::O_RDONLY as u32);
    // (compat, nr, second argument, on f (else on the missing path), return).
    let calls = [
        (true, nr32("chmod"), 0o644, true, sys32(nr32("chmod"), fpath, 0o644, 0)),
        (true, nr32("swapon"), 0, false, sys32(nr32("swapon"), gone, 0, 0)),
        (true, nr32("unlink"), 0, false, sys32(nr32("unlink"), gone, 0, 0)),
        // SAFETY: raw syscalls on NUL-terminated paths below 4 GiB, as above.
        (false, nr64("unlink"), 0, false, unsafe { libc::syscall(i64::from(nr64("unlink")), gone as usize) }),
        // SAFETY: as above.
        (false, nr64("chmod"), 0o644, true, unsafe { libc::syscall(i64::from(nr64("chmod")), fpath as usize, 0o644) }),
        // i386's classes: chown32 changes attributes, open by its access mode.
        (true, nr32("chown32"), 0, true, sys32(nr32("chown32"), fpath, 0, 0)),
        (true, nr32("open"), wr, true, close32(sys32(nr32("open"), fpath, wr, 0))),
        (true, nr32("open"), rd, true, close32(sys32(nr32("open"), fpath, rd, 0))),
    ];
    auditctl(&["-e", &audit.enabled]);
    let got = reader.syscalls_of(pid);
    let f_bytes = f.as_os_str().as_encoded_bytes().to_vec();
    let mut want = Vec::new();
    for (compat, nr, a1, on_f, ret) in calls {
        let call = CallFacts { compat, nr, ret, ids, pid, args: [0, u64::from(a1), 0, 0], ..CallFacts::default() };
        let name = if on_f { f_bytes.as_slice() } else { b"/nonexistent-tracer-rules".as_slice() };
        let names = [Name { path: name, owner: on_f.then_some((0, 0)) }];
        let facts = Facts { arch: call.arch(), nr, ret, ids, names: &names };
        if let Some(r) = compiled.decide(&compiled.candidates(&call), &facts) {
            want.push((nr, compiled.keys(r).first().cloned()));
        }
    }
    drop(audit);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(got, want, "the kernel (left) vs tracer_rules (right)\n{text}");
    let keys: Vec<&str> = want.iter().filter_map(|(_, k)| k.as_deref()).collect();
    assert_eq!(
        keys,
        ["b32chmod", "noarch", "noarch", "w32", "w32", "w32"],
        "i386 chmod, i386 swapon (87), x86_64 unlink (87), x86_64 chmod, i386 chown32 and open for writing"
    );
}

/// audit's static syscall classes, probed by number: for each of `-F perm=w|r|a|x` over all
/// calls, the calls the kernel logs are those `perm_class` puts in the class. The calls get
/// invalid pointers and fds (they fail at once); the class is the number's.
#[test]
fn syscall_classes_are_the_kernels() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    let names = [
        "rename",
        "mkdir",
        "rmdir",
        "creat",
        "link",
        "unlink",
        "symlink",
        "mknod",
        "mkdirat",
        "mknodat",
        "unlinkat",
        "renameat",
        "linkat",
        "symlinkat",
        "renameat2",
        "acct",
        "swapon",
        "quotactl",
        "truncate",
        "truncate64",
        "ftruncate",
        "ftruncate64",
        "fallocate",
        "bind",
        "readlink",
        "readlinkat",
        "listxattr",
        "llistxattr",
        "flistxattr",
        "getxattr",
        "lgetxattr",
        "fgetxattr",
        "chmod",
        "fchmod",
        "fchmodat",
        "chown",
        "lchown",
        "fchown",
        "fchownat",
        "chown32",
        "lchown32",
        "fchown32",
        "setxattr",
        "lsetxattr",
        "fsetxattr",
        "removexattr",
        "lremovexattr",
        "fremovexattr",
        "utimensat",
        "utimes",
        "access",
        "stat",
        "statx",
        "swapoff",
        "mount",
        "execve",
        "execveat",
    ];
    let numbered = [452, 463, 464, 465, 466];
    let audit = Audit::take();
    for arch in [Arch::B64, Arch::B32] {
        let mut calls: Vec<u32> = names.iter().filter_map(|n| syscalls::number(arch, n)).collect();
        calls.extend(numbered);
        let b = if arch == Arch::B64 { "arch=b64" } else { "arch=b32" };
        for (perm, bit) in [("w", 2), ("r", 4), ("a", 8), ("x", 1)] {
            auditctl(&["-D"]);
            auditctl(&[
                "-a",
                "always,exit",
                "-F",
                b,
                "-S",
                "all",
                "-F",
                &format!("pid={pid}"),
                "-F",
                &format!("perm={perm}"),
            ]);
            let reader = Reader::open();
            auditctl(&["-e", "1"]);
            for &nr in &calls {
                if arch == Arch::B64 {
                    // SAFETY: invalid pointers (1, -1) and fds (-1): the call fails at once.
                    unsafe { libc::syscall(i64::from(nr), -1i64, 1i64, -1i64, 1i64, 0i64, 0i64) };
                } else {
                    sys32(nr, u32::MAX, 1, u32::MAX);
                }
            }
            auditctl(&["-e", &audit.enabled]);
            let mut kernel: Vec<u32> = reader.syscalls_of(pid).into_iter().map(|(nr, _)| nr).collect();
            kernel.dedup();
            let ours: Vec<u32> = calls
                .iter()
                .copied()
                .filter(|&nr| {
                    let c = tracer_rules::perm_class(arch, nr);
                    c.from == tracer_common::rules::PERM_STATIC && c.perm & bit != 0
                })
                .collect();
            let label = |v: &[u32]| {
                v.iter().map(|&n| syscalls::name(arch, n).map_or(n.to_string(), str::to_string)).collect::<Vec<_>>()
            };
            assert_eq!(label(&kernel), label(&ours), "{arch:?} perm={perm}: the kernel (left) vs perm_class (right)");
        }
    }
}
