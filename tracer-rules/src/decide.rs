//! The rule decision, as the kernel's audit filter takes it at syscall exit:
//!
//! 1. the exit list: rules in order, the first whose conditions all hold decides
//!    (`audit_filter_syscall`); `dir=` rules are here;
//! 2. then the inode lists (`audit_filter_inodes`): for each name of the call in order, the
//!    `path=` rules watching it, in order; the first that holds decides instead, but only
//!    among the rules *before* step 1's (audit's rule priorities: `rule->prio <= ctx->prio`
//!    is skipped). Overall the first rule in order wins; between watches, the first name.
//!
//! Checked on the running kernel (6.18): `-a never …` then `-w FILE` logs nothing for the
//! file, `-w FILE` then `-a never …` logs it with the watch's key, and `-a always … -k a`
//! then `-w FILE -k b` logs key a.
//!
//! The kernel side evaluates what it sees and sends the candidates ([`Compiled::candidates`]
//! is its reference); [`Compiled::decide`] finishes on the names.

use tracer_common::rules::{
    KF_A0, KF_A1, KF_A2, KF_A3, KF_AUID, KF_CMP, KF_EGID, KF_EUID, KF_EXE, KF_EXIT, KF_FSGID, KF_FSUID, KF_GID,
    KF_LOGINUID_SET, KF_PERM, KF_PID, KF_PPID, KF_SESSIONID, KF_SGID, KF_SUCCESS, KF_SUID, KF_UID, KRULE_USER, KRule,
    NR_OTHER, NrKey, RuleBits,
};

use crate::{
    Arch, Compiled, Facts, Ids, Name,
    classes::{PermClass, match_perm},
    model::{Action, Op, Var},
};

/// A rule's conditions on names, decided in user space.
#[derive(Clone, Debug)]
pub(crate) enum UserCond {
    Path(Vec<u8>),
    /// Without a trailing '/'.
    Dir(Vec<u8>),
    Obj {
        gid: bool,
        op: Op,
        value: u32,
    },
    ObjCmp {
        left: Var,
        gid: bool,
        op: Op,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct UserRule {
    pub(crate) action: Action,
    /// A `path=` rule: evaluated per name, after the exit list.
    pub(crate) watch: bool,
    pub(crate) conds: Vec<UserCond>,
    pub(crate) keys: Vec<String>,
}

fn bits(b: &RuleBits) -> impl Iterator<Item = usize> + '_ {
    b.words
        .iter()
        .enumerate()
        .flat_map(|(w, &word)| (0..64).filter(move |i| word >> i & 1 == 1).map(move |i| w * 64 + i))
}

/// A name's owner; a name the kernel could not resolve has uid/gid 0 in its audit_names.
fn owner(n: &Name<'_>) -> (u32, u32) {
    n.owner.unwrap_or((0, 0))
}

pub(crate) fn task_id(ids: &Ids, v: Var) -> u32 {
    match v {
        Var::Auid => ids.auid,
        Var::Uid => ids.uid,
        Var::Euid => ids.euid,
        Var::Suid => ids.suid,
        Var::Fsuid => ids.fsuid,
        Var::Gid => ids.gid,
        Var::Egid => ids.egid,
        Var::Sgid => ids.sgid,
        _ => ids.fsgid,
    }
}

fn in_dir(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/" && path.starts_with(b"/")
        || path.strip_prefix(dir).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

impl UserRule {
    /// `name`: the name an inode-list rule is evaluated for (None on the exit list).
    fn holds(&self, facts: &Facts<'_>, name: Option<&Name<'_>>) -> bool {
        let obj = |gid: bool, n: &Name<'_>| if gid { owner(n).1 } else { owner(n).0 };
        self.conds.iter().all(|c| match c {
            UserCond::Path(p) => name.is_some_and(|n| n.path == p.as_slice()),
            UserCond::Dir(d) => facts.names.iter().any(|n| in_dir(n.path, d)),
            UserCond::Obj { gid, op, value } => match name {
                Some(n) => op.holds(obj(*gid, n), *value),
                None => facts.names.iter().any(|n| op.holds(obj(*gid, n), *value)),
            },
            UserCond::ObjCmp { left, gid, op } => {
                let t = task_id(&facts.ids, *left);
                name.into_iter().chain(facts.names).any(|n| op.holds(t, obj(*gid, n)))
            }
        })
    }
}

pub(crate) fn needs_owners(c: &Compiled, cand: &RuleBits) -> bool {
    bits(cand)
        .filter_map(|i| c.user.get(i))
        .any(|u| u.conds.iter().any(|c| matches!(c, UserCond::Obj { .. } | UserCond::ObjCmp { .. })))
}

pub(crate) fn decide(c: &Compiled, cand: &RuleBits, facts: &Facts<'_>) -> Option<usize> {
    let exit = bits(cand).filter(|&i| c.user.get(i).is_some_and(|u| !u.watch)).find(|&i| c.user[i].holds(facts, None));
    // Only watches before the exit list's match can take over (higher priority).
    let before = exit.unwrap_or(usize::MAX);
    let inode = facts.names.iter().find_map(|n| {
        bits(cand)
            .take_while(|&i| i < before)
            .filter(|&i| c.user.get(i).is_some_and(|u| u.watch))
            .find(|&i| c.user[i].holds(facts, Some(n)))
    });
    inode.or(exit).filter(|&i| c.user[i].action == Action::Always)
}

/// What the kernel side knows about a call (the reference for `tracer-ebpf`'s evaluation).
#[derive(Clone, Copy, Debug, Default)]
pub struct CallFacts {
    pub compat: bool,
    pub nr: u32,
    pub ret: i64,
    pub ids: Ids,
    /// Thread group id, and the real parent's.
    pub pid: u32,
    pub ppid: u32,
    pub sessionid: u32,
    pub args: [u64; 4],
    /// openat2's `open_how.flags`.
    pub open_how_flags: u64,
    /// The running executable's (inode, kernel device), if it has one.
    pub exe: Option<(u64, u32)>,
}

impl CallFacts {
    pub fn arch(&self) -> Arch {
        if self.compat { Arch::B32 } else { Arch::B64 }
    }
}

fn kvalue(f: &CallFacts, code: u16) -> u32 {
    let low = |v: u64| (v & 0xffff_ffff) as u32;
    match code {
        KF_AUID => f.ids.auid,
        KF_UID => f.ids.uid,
        KF_EUID => f.ids.euid,
        KF_SUID => f.ids.suid,
        KF_FSUID => f.ids.fsuid,
        KF_GID => f.ids.gid,
        KF_EGID => f.ids.egid,
        KF_SGID => f.ids.sgid,
        KF_FSGID => f.ids.fsgid,
        KF_PID => f.pid,
        KF_PPID => f.ppid,
        KF_SESSIONID => f.sessionid,
        KF_LOGINUID_SET => u32::from(f.ids.auid != u32::MAX),
        KF_EXIT => low(f.ret.cast_unsigned()),
        KF_SUCCESS => u32::from(!(-4095..=-1).contains(&f.ret)),
        KF_A0 => low(f.args[0]),
        KF_A1 => low(f.args[1]),
        KF_A2 => low(f.args[2]),
        KF_A3 => low(f.args[3]),
        _ => 0,
    }
}

fn kernel_holds(r: &KRule, f: &CallFacts, class: PermClass) -> bool {
    r.fields[..r.nfields as usize].iter().all(|k| {
        let op = Op::from_code(k.op).unwrap_or(Op::Eq);
        match k.code {
            KF_PERM => match_perm(class, (k.value & 0xffff_ffff) as u32, &f.args, f.open_how_flags),
            KF_EXE => {
                let same = f.exe == Some((k.value, k.value2));
                if op == Op::Ne { !same } else { same }
            }
            KF_CMP => {
                let l = kvalue(f, u16::try_from(k.value).unwrap_or_default());
                op.holds(l, kvalue(f, u16::try_from(k.value2).unwrap_or_default()))
            }
            code => op.holds(kvalue(f, code), (k.value & 0xffff_ffff) as u32),
        }
    })
}

impl Compiled {
    /// The kernel side's job, for tests and as its reference: the rules of the call's RULE_NRS
    /// entry (or `NR_OTHER`) whose kernel conditions hold, in order, up to and including the
    /// first that needs nothing from user space (no later rule can decide: audit's first
    /// match in rule order holds for `path=` rules too).
    pub fn candidates(&self, f: &CallFacts) -> RuleBits {
        let compat = u32::from(f.compat);
        let lookup = |nr| self.nrs.iter().find(|(k, _)| *k == NrKey { compat, nr }).map(|(_, e)| e);
        let mut out = RuleBits::default();
        let Some(e) = lookup(f.nr).or_else(|| lookup(NR_OTHER)) else { return out };
        let class = PermClass { from: e.perm_from, arg: e.perm_arg, perm: e.perm };
        for i in bits(&e.rules) {
            let Some(r) = self.rules.get(i) else { break };
            if kernel_holds(r, f, class) {
                out.words[i / 64] |= 1 << (i % 64);
                if r.flags & KRULE_USER == 0 {
                    break;
                }
            }
        }
        out
    }
}
