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

use tracer_rules::{Arch, Compiled, Facts, Ids, Name};

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
    let paths = paths(ev);
    let owners: Vec<Option<Owner>> = paths.iter().map(|(p, o)| o.or_else(|| owner(p))).collect();
    let names: Vec<Name<'_>> =
        paths.iter().zip(&owners).map(|((p, _), o)| Name { path: p.as_slice(), owner: *o }).collect();
    let facts = Facts {
        arch: if ev.compat { Arch::B32 } else { Arch::B64 },
        nr: ev.syscall,
        ret: ev.ret,
        ids: Ids {
            auid: ev.auid.raw(),
            uid: ev.uid,
            euid: ev.euid,
            suid: ev.suid,
            fsuid: ev.fsuid,
            gid: ev.gid,
            egid: ev.egid,
            sgid: ev.sgid,
            fsgid: ev.fsgid,
        },
        names: &names,
    };
    match rules.decide(&cand, &facts) {
        Some(rule) => {
            ev.keys = rules.keys(rule).to_vec();
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
