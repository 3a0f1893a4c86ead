//! `trace --rules`, the user-side end of the rule decision: the kernel sent the candidate
//! rules with the record (`Event::rules`); here the names are resolved into `Facts` and
//! `tracer_rules::Compiled::decide` picks the first candidate whose user-side conditions
//! (path, dir, obj_uid, obj_gid…) hold. Its action decides; its keys tag the event.
//!
//! Names are the host paths the kernel resolved, lexically normalised (symlinks are not
//! followed). The owner of an fd's file is the one the kernel read from the inode; for a
//! name it is `lstat` here, after the call: a file replaced or removed in between shows its
//! new owner or none (the race audit does not have, as it reads the inode during the call).

use std::os::unix::fs::MetadataExt;

use tracer_rules::{Arch, Compiled, Facts, Ids, Name, Task};

use crate::event::{Detail, Event, join};

/// `--rules` (and the daemon's rules directory): the files parsed and compiled (control
/// lines' notes go to stderr); a bad line is `FILE:LINE: reason`, exit 2, nothing attached.
pub(crate) fn compile(paths: &[std::path::PathBuf]) -> anyhow::Result<Option<std::sync::Arc<Compiled>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let usage = |e: tracer_rules::RulesError| crate::error::UsageError(e.to_string());
    let set = tracer_rules::load(paths).map_err(usage)?;
    for n in &set.notes {
        eprintln!("tracer: {}: {}", n.at, n.text);
    }
    let compiled = tracer_rules::compile(&set).map_err(usage)?;
    Ok(Some(std::sync::Arc::new(compiled)))
}

/// (uid, gid) of a name's object.
type Owner = (u32, u32);

/// Decides `ev`: false when no rule selects it (drop it); else its keys are set.
pub(crate) fn decide(rules: &Compiled, ev: &mut Event) -> bool {
    let Some(cand) = ev.rules else {
        // Only rule-selected records reach user space with --rules.
        return false;
    };
    let ids = Ids {
        auid: ev.auid.raw(),
        uid: ev.uid,
        euid: ev.euid,
        suid: ev.suid,
        fsuid: ev.fsuid,
        gid: ev.gid,
        egid: ev.egid,
        sgid: ev.sgid,
        fsgid: ev.fsgid,
    };
    // The task list: a `never` task has none of its calls recorded.
    let task = Task { ids, pid: ev.pid, ppid: ev.ppid.unwrap_or(0), sessionid: ev.ses.raw() };
    if !rules.task_audited(&task) {
        return false;
    }
    let mut paths = paths(ev);
    // The filesystem list: names on those file systems are not collected (no rule sees
    // them, no PATH item shows them).
    let hidden: Vec<bool> = if rules.has_fs_rules() {
        paths.iter().map(|(p, _)| fs_magic(p).is_some_and(|m| rules.hides_fs(m))).collect()
    } else {
        Vec::new()
    };
    let keep = |i: usize| !hidden.get(i).copied().unwrap_or(false);
    let mut i = 0;
    paths.retain(|_| {
        i += 1;
        keep(i - 1)
    });
    let lookup = rules.needs_owners(&cand);
    let owners: Vec<Option<Owner>> =
        paths.iter().map(|(p, o)| o.or_else(|| if lookup { owner(p) } else { None })).collect();
    let names: Vec<Name<'_>> =
        paths.iter().zip(&owners).map(|((p, _), o)| Name { path: p.as_slice(), owner: *o }).collect();
    let facts =
        Facts { arch: if ev.compat { Arch::B32 } else { Arch::B64 }, nr: ev.syscall, ret: ev.ret, ids, names: &names };
    match rules.decide(&cand, &facts) {
        Some(rule) => {
            ev.keys = rules.keys(rule).to_vec();
            if let Detail::Syscall(c) = &mut ev.detail {
                let mut i = 0;
                c.names.retain(|_| {
                    i += 1;
                    keep(i - 1)
                });
            }
            true
        }
        None => false,
    }
}

/// The event's names (audit's PATH items) as absolute host paths, with the owner the kernel
/// read when it did.
fn paths(ev: &Event) -> Vec<(Vec<u8>, Option<Owner>)> {
    match &ev.detail {
        Detail::Open(o) => vec![(o.host_path.clone(), None)],
        Detail::Exec(e) if ev.ok() => ev.exe.iter().map(|x| (x.clone(), None)).collect(),
        Detail::Exec(e) => vec![(join(&e.cwd, &e.filename), None)],
        Detail::Syscall(c) => c.names.iter().map(|n| (n.host_path.clone(), n.inode.map(|i| (i.uid, i.gid)))).collect(),
        Detail::Connect(_)
        | Detail::Log(_)
        | Detail::Exit(_)
        | Detail::ConnectOutcome(_)
        | Detail::Dns(_)
        | Detail::Listen(_) => Vec::new(),
    }
}

/// The owner of `path` (not following a final symlink), if it exists now.
fn owner(path: &[u8]) -> Option<Owner> {
    use std::os::unix::ffi::OsStrExt;
    let m = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path)).ok()?;
    Some((m.uid(), m.gid()))
}

/// The file system magic (`statfs`'s `f_type`) of the file at `path`, if it exists now (a
/// name without an inode has no file system, as in the kernel's audit).
fn fs_magic(path: &[u8]) -> Option<u32> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path; `st` is written by statfs before it is read.
    let st = unsafe {
        if libc::statfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    // f_type is signed on some ABIs; the magic is its low 32 bits.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    Some(st.f_type as u32)
}
