//! A rule in `auditctl -l`'s form (audit 3.0.9): what the kernel would list back.

use std::fmt::Write;

use tracer_common::rules::{PERM_ATTR, PERM_EXEC, PERM_READ, PERM_WRITE};

use crate::{
    Arch, Rule,
    model::{Action, Cond, List, Op, Syscalls, Var},
    syscalls, value,
};

fn perms(p: u32) -> String {
    let mut s = String::new();
    for (bit, c) in [(PERM_READ, 'r'), (PERM_WRITE, 'w'), (PERM_EXEC, 'x'), (PERM_ATTR, 'a')] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// auditctl lists a rule naming every syscall with only path/dir, perm and keys as a watch.
fn is_watch(r: &Rule) -> bool {
    r.list == List::Exit
        && r.syscalls == Syscalls::All
        && r.arch.is_none()
        && r.conds.iter().any(|c| matches!(c, Cond::Perm(_)))
        && r.conds.iter().all(|c| matches!(c, Cond::Perm(_) | Cond::Path(_) | Cond::Dir(_)))
}

pub(crate) fn describe(r: &Rule) -> String {
    let mut s = String::new();
    if is_watch(r) {
        // auditctl prints the fields in order, so the path comes first for a `-w` rule.
        let mut conds: Vec<&Cond> = r.conds.iter().collect();
        conds.sort_by_key(|c| !matches!(c, Cond::Path(_) | Cond::Dir(_)));
        for c in conds {
            match c {
                Cond::Path(p) | Cond::Dir(p) => {
                    let _ = write!(s, "-w {p}");
                }
                Cond::Perm(p) => {
                    let _ = write!(s, " -p {}", perms(*p));
                }
                _ => {}
            }
        }
        for k in &r.keys {
            let _ = write!(s, " -k {k}");
        }
        return s;
    }
    let action = if r.action == Action::Always { "always" } else { "never" };
    let list = match r.list {
        List::Exit => "exit",
        List::Task => "task",
        List::Filesystem => "filesystem",
    };
    let _ = write!(s, "-a {action},{list}");
    let table = r.arch.map_or(Arch::B64, |(_, a)| a);
    if let Some((op, a)) = r.arch {
        let _ = write!(s, " -F arch{}{}", op.symbol(), if a == Arch::B64 { "b64" } else { "b32" });
    }
    match &r.syscalls {
        Syscalls::All if r.list != List::Exit => {}
        Syscalls::All => s.push_str(" -S all"),
        Syscalls::Some(list) => {
            let names: Vec<String> = list
                .iter()
                .map(|&nr| syscalls::name(table, nr).map_or_else(|| nr.to_string(), str::to_string))
                .collect();
            let _ = write!(s, " -S {}", names.join(","));
        }
    }
    for c in &r.conds {
        match c {
            Cond::Path(p) => {
                let _ = write!(s, " -F path={p}");
            }
            Cond::Dir(p) => {
                let _ = write!(s, " -F dir={p}");
            }
            Cond::Perm(p) => {
                let _ = write!(s, " -F perm={}", perms(*p));
            }
            Cond::Exe { op, path } => {
                let _ = write!(s, " -F exe{}{path}", op.symbol());
            }
            Cond::Compare { left, op, right } => {
                let _ = write!(s, " -C {}{}{}", left.name(), op.symbol(), right.name());
            }
            Cond::Lsm { field, op, value } => {
                let _ = write!(s, " -F {field}{}{value}", op.symbol());
            }
            Cond::FsType { op, magic } => {
                let v = crate::lsm::fstype_name(*magic).map_or_else(|| magic.to_string(), str::to_string);
                let _ = write!(s, " -F fstype{}{v}", op.symbol());
            }
            Cond::Cmp { var, op, value } => {
                let _ = write!(s, " -F {}{}{}", var.name(), op.symbol(), show(*var, *op, *value));
            }
        }
    }
    for k in &r.keys {
        let _ = write!(s, " -F key={k}");
    }
    s
}

fn show(var: Var, _op: Op, v: u32) -> String {
    match var {
        Var::A0 | Var::A1 | Var::A2 | Var::A3 => format!("0x{v:X}"),
        Var::Exit => {
            let n = v.cast_signed();
            match value::errno_name(n.unsigned_abs()) {
                Some(name) if n < 0 => format!("-{name}"),
                _ => n.to_string(),
            }
        }
        _ => v.cast_signed().to_string(),
    }
}
