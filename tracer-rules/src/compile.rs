//! A rule set to the kernel tables (`tracer_common::rules`) and the user-side remainder.

use std::{collections::BTreeMap, os::unix::fs::MetadataExt};

use tracer_common::rules::{
    ACTION_ALWAYS, ACTION_NEVER, KF_CMP, KF_EXE, KF_PERM, KField, KRULE_USER, KRULE_WATCH, KRule, NR_OTHER, NrKey,
    RULE_FIELDS_MAX, RULE_NRS_MAX, RULES_MAX, RuleBits, RuleNr,
};

use crate::{
    Arch, Compiled, Rule, RuleSet, RulesError,
    classes::{can_satisfy, perm_class},
    decide::{UserCond, UserRule},
    model::{Action, Cond, List, Op, Syscalls, Var},
    syscalls,
    task::TaskRule,
};

fn set(bits: &mut RuleBits, i: usize) {
    bits.words[i / 64] |= 1 << (i % 64);
}

/// The ABIs (`NrKey::compat`) a rule applies to.
fn compats(rule: &Rule) -> Vec<Arch> {
    match rule.arch {
        None => vec![Arch::B64, Arch::B32],
        Some((Op::Eq, a)) => vec![a],
        Some((_, Arch::B64)) => vec![Arch::B32],
        Some((_, Arch::B32)) => vec![Arch::B64],
    }
}

fn entry(arch: Arch, nr: u32) -> RuleNr {
    let c = perm_class(arch, nr);
    RuleNr { names: syscalls::names(arch, nr), perm_from: c.from, perm_arg: c.arg, perm: c.perm, ..RuleNr::default() }
}

/// Sets rule `i`'s bit in the RULE_NRS entries of the calls it names.
fn set_bits(rule: &Rule, i: usize, nrs: &mut BTreeMap<(u32, u32), RuleNr>, all: &mut [RuleBits; 2]) {
    // Every perm= field must be satisfiable by the call (each is its own condition).
    let perms: Vec<u32> =
        rule.conds.iter().filter_map(|c| if let Cond::Perm(p) = c { Some(*p) } else { None }).collect();
    for arch in compats(rule) {
        let c = arch.compat();
        let fits = |nr: u32| perms.iter().all(|&m| can_satisfy(perm_class(arch, nr), m));
        match (&rule.syscalls, perms.is_empty()) {
            (Syscalls::All, true) => {
                // Each known number gets its own entry, which says where the call's names
                // are (a dir=/path= condition needs them); NR_OTHER serves numbers past
                // the table. (An NR_OTHER-only rule reached every call without its names.)
                for nr in syscalls::numbers(arch) {
                    set(&mut nrs.entry((c, nr)).or_insert_with(|| entry(arch, nr)).rules, i);
                }
                set(&mut all[c as usize], i);
            }
            (Syscalls::All, false) => {
                for nr in syscalls::numbers(arch).filter(|&nr| fits(nr)) {
                    set(&mut nrs.entry((c, nr)).or_insert_with(|| entry(arch, nr)).rules, i);
                }
            }
            (Syscalls::Some(list), _) => {
                // The numbers are the rule's table's; the kernel applies them to whichever
                // ABI calls (arch-less rules), so the entry describes the caller's call.
                for &nr in list.iter().filter(|&&nr| fits(nr)) {
                    set(&mut nrs.entry((c, nr)).or_insert_with(|| entry(arch, nr)).rules, i);
                }
            }
        }
    }
}

pub(crate) fn compile(set_: &RuleSet) -> Result<Compiled, RulesError> {
    if let Some(r) = set_.rules.get(RULES_MAX) {
        return Err(RulesError::Rule {
            at: r.at.clone(),
            msg: format!("more than {RULES_MAX} rules (tracer's kernel tables hold {RULES_MAX})"),
        });
    }
    let mut nrs: BTreeMap<(u32, u32), RuleNr> = BTreeMap::new();
    let mut all: [RuleBits; 2] = [RuleBits::default(); 2];
    let mut krules = Vec::with_capacity(set_.rules.len());
    let mut user = Vec::with_capacity(set_.rules.len());
    let (mut task, mut fs_never) = (Vec::new(), Vec::new());
    // The task list comes first: a task,always match records every call of the task, and no
    // exit rule or watch can override it (audit gives it the highest priority).
    let order =
        set_.rules.iter().filter(|r| r.list == List::Task).chain(set_.rules.iter().filter(|r| r.list != List::Task));
    for (i, rule) in order.enumerate() {
        let (k, u) = split(rule).map_err(|msg| RulesError::Rule { at: rule.at.clone(), msg })?;
        // Every rule keeps its index; only exit rules that can match get kernel bits.
        krules.push(k);
        user.push(u);
        match rule.list {
            List::Task => {
                let t = TaskRule { action: rule.action, conds: rule.conds.clone(), arch: rule.arch.is_some() };
                // task,always: every call whose task the rule names, as an exit rule on every
                // call with the task's fields (user space checks the task list's order).
                if rule.action == Action::Always && t.can_hold() {
                    set_bits(rule, i, &mut nrs, &mut all);
                }
                task.push(t);
            }
            List::Filesystem if rule.action == Action::Never => fs_never.extend(
                rule.conds
                    .iter()
                    .filter_map(|c| if let Cond::FsType { op, magic } = c { Some((*op, *magic)) } else { None }),
            ),
            List::Filesystem => {}
            // A label condition with no labelling LSM never holds: the rule never matches.
            List::Exit if rule.conds.iter().any(|c| matches!(c, Cond::Lsm { .. })) => {}
            List::Exit => set_bits(rule, i, &mut nrs, &mut all),
        }
    }
    let mut out: Vec<(NrKey, RuleNr)> = nrs
        .into_iter()
        .map(|((compat, nr), mut e)| {
            for (w, a) in e.rules.words.iter_mut().zip(all[compat as usize].words) {
                *w |= a;
            }
            (NrKey { compat, nr }, e)
        })
        .collect();
    if out.len() + 2 > RULE_NRS_MAX as usize
        && let Some(last) = set_.rules.last()
    {
        return Err(RulesError::Rule {
            at: last.at.clone(),
            msg: format!("the rules name more calls than tracer's kernel table holds ({RULE_NRS_MAX})"),
        });
    }
    for (compat, bits) in all.iter().enumerate() {
        if bits.words.iter().any(|&w| w != 0) {
            let compat = u32::try_from(compat).unwrap_or_default();
            out.push((NrKey { compat, nr: NR_OTHER }, RuleNr { rules: *bits, ..RuleNr::default() }));
        }
    }
    Ok(Compiled { nrs: out, rules: krules, user, task, fs_never })
}

/// The kernel's part of a rule and the user-side part.
pub(crate) fn split(rule: &Rule) -> Result<(KRule, UserRule), String> {
    let mut k =
        KRule { action: if rule.action == Action::Always { ACTION_ALWAYS } else { ACTION_NEVER }, ..KRule::default() };
    let mut u = UserRule { action: rule.action, watch: false, conds: Vec::new(), keys: rule.keys.clone() };
    let mut push = |f: KField| {
        let n = k.nfields as usize;
        if n >= RULE_FIELDS_MAX {
            return Err(format!("more than {RULE_FIELDS_MAX} kernel conditions in one rule (tracer's limit)"));
        }
        k.fields[n] = f;
        k.nfields += 1;
        Ok(())
    };
    for c in &rule.conds {
        match c {
            Cond::Cmp { var: v @ (Var::ObjUid | Var::ObjGid), op, value } => {
                u.conds.push(UserCond::Obj { gid: *v == Var::ObjGid, op: *op, value: *value });
            }
            Cond::Cmp { var: Var::Success, op, value } => {
                // The kernel compares 1 (success) / 2 (failure), so order comparisons on
                // 0/1 reverse.
                let op = match op {
                    Op::Lt => Op::Gt,
                    Op::Gt => Op::Lt,
                    Op::Le => Op::Ge,
                    Op::Ge => Op::Le,
                    o => *o,
                };
                push(kfield(Var::Success, op, u64::from(*value), 0))?;
            }
            Cond::Cmp { var, op, value } => push(kfield(*var, *op, u64::from(*value), 0))?,
            Cond::Path(p) => {
                u.watch = true;
                u.conds.push(UserCond::Path(p.as_bytes().to_vec()));
            }
            Cond::Dir(d) => {
                let d = d.trim_end_matches('/');
                u.conds.push(UserCond::Dir(if d.is_empty() { b"/".to_vec() } else { d.as_bytes().to_vec() }));
            }
            Cond::Perm(p) => push(KField { code: KF_PERM, op: Op::Eq.code(), value2: 0, value: u64::from(*p) })?,
            Cond::Exe { op, path } => {
                // The file itself, not a symlink's target (the kernel marks the dentry). Not
                // there (yet): an inode no file has, as the kernel's unset mark.
                let (ino, dev) =
                    std::fs::symlink_metadata(path).map_or((u64::MAX, u32::MAX), |m| (m.ino(), kernel_dev(m.dev())));
                push(KField { code: KF_EXE, op: op.code(), value2: dev, value: ino })?;
            }
            // Not kernel conditions: a label never holds here (the rule gets no bits), fstype is
            // the filesystem list's.
            Cond::Lsm { .. } | Cond::FsType { .. } => {}
            Cond::Compare { left, op, right } if right.is_obj() => {
                u.conds.push(UserCond::ObjCmp { left: *left, gid: *right == Var::ObjGid, op: *op });
            }
            Cond::Compare { left, op, right } => {
                let (l, r) = (left.kcode().unwrap_or_default(), right.kcode().unwrap_or_default());
                push(KField { code: KF_CMP, op: op.code(), value2: u32::from(r), value: u64::from(l) })?;
            }
        }
    }
    if !u.conds.is_empty() {
        k.flags |= KRULE_USER;
    }
    if u.watch {
        k.flags |= KRULE_WATCH;
    }
    Ok((k, u))
}

fn kfield(var: Var, op: Op, value: u64, value2: u32) -> KField {
    KField { code: var.kcode().unwrap_or_default(), op: op.code(), value2, value }
}

/// `st_dev` (glibc's encoding) as the kernel's `s_dev` (`MKDEV`: major << 20 | minor).
fn kernel_dev(dev: u64) -> u32 {
    let major = libc::major(dev);
    let minor = libc::minor(dev);
    (major << 20) | (minor & 0xf_ffff)
}
