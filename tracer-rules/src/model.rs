//! The parsed form of a rule: what auditctl would send the kernel, in the order given.

use tracer_common::rules::{
    KF_A0, KF_A1, KF_A2, KF_A3, KF_AUID, KF_EGID, KF_EUID, KF_EXIT, KF_FSGID, KF_FSUID, KF_GID, KF_LOGINUID_SET,
    KF_PID, KF_PPID, KF_SESSIONID, KF_SGID, KF_SUCCESS, KF_SUID, KF_UID, OP_BITMASK, OP_BITTEST, OP_EQ, OP_GE, OP_GT,
    OP_LE, OP_LT, OP_NE,
};

/// `always` or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Never,
    Always,
}

/// Which of audit's filter lists a rule is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// Syscall exit (`-a always,exit`, `-w`).
    Exit,
    /// Task creation (`-a task,never`): a task it matches is not audited at all.
    Task,
    /// `-a never,filesystem -F fstype=`: names on those file systems are not collected.
    Filesystem,
}

/// audit's operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `&`: (left & value) != 0.
    BitMask,
    /// `&=`: (left & value) == value.
    BitTest,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::BitMask => "&",
            Op::BitTest => "&=",
        }
    }

    /// `KField::op`.
    pub fn code(self) -> u16 {
        match self {
            Op::Eq => OP_EQ,
            Op::Ne => OP_NE,
            Op::Lt => OP_LT,
            Op::Gt => OP_GT,
            Op::Le => OP_LE,
            Op::Ge => OP_GE,
            Op::BitMask => OP_BITMASK,
            Op::BitTest => OP_BITTEST,
        }
    }

    /// From a `KField::op`.
    pub fn from_code(code: u16) -> Option<Op> {
        [Op::Eq, Op::Ne, Op::Lt, Op::Gt, Op::Le, Op::Ge, Op::BitMask, Op::BitTest]
            .into_iter()
            .find(|o| o.code() == code)
    }

    /// `audit_comparator` (and `audit_uid_comparator` for = != < > <= >=) on 32-bit values.
    pub fn holds(self, left: u32, right: u32) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Lt => left < right,
            Op::Gt => left > right,
            Op::Le => left <= right,
            Op::Ge => left >= right,
            Op::BitMask => left & right != 0,
            Op::BitTest => left & right == right,
        }
    }
}

/// A value a field compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Auid,
    Uid,
    Euid,
    Suid,
    Fsuid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
    Pid,
    Ppid,
    SessionId,
    LoginuidSet,
    Exit,
    Success,
    A0,
    A1,
    A2,
    A3,
    /// The object's owner: any name of the call (user space decides).
    ObjUid,
    ObjGid,
}

impl Var {
    pub fn name(self) -> &'static str {
        match self {
            Var::Auid => "auid",
            Var::Uid => "uid",
            Var::Euid => "euid",
            Var::Suid => "suid",
            Var::Fsuid => "fsuid",
            Var::Gid => "gid",
            Var::Egid => "egid",
            Var::Sgid => "sgid",
            Var::Fsgid => "fsgid",
            Var::Pid => "pid",
            Var::Ppid => "ppid",
            Var::SessionId => "sessionid",
            Var::LoginuidSet => "loginuid_set",
            Var::Exit => "exit",
            Var::Success => "success",
            Var::A0 => "a0",
            Var::A1 => "a1",
            Var::A2 => "a2",
            Var::A3 => "a3",
            Var::ObjUid => "obj_uid",
            Var::ObjGid => "obj_gid",
        }
    }

    /// The `KF_*` code of a task field (None for obj_uid/obj_gid).
    pub fn kcode(self) -> Option<u16> {
        Some(match self {
            Var::Auid => KF_AUID,
            Var::Uid => KF_UID,
            Var::Euid => KF_EUID,
            Var::Suid => KF_SUID,
            Var::Fsuid => KF_FSUID,
            Var::Gid => KF_GID,
            Var::Egid => KF_EGID,
            Var::Sgid => KF_SGID,
            Var::Fsgid => KF_FSGID,
            Var::Pid => KF_PID,
            Var::Ppid => KF_PPID,
            Var::SessionId => KF_SESSIONID,
            Var::LoginuidSet => KF_LOGINUID_SET,
            Var::Exit => KF_EXIT,
            Var::Success => KF_SUCCESS,
            Var::A0 => KF_A0,
            Var::A1 => KF_A1,
            Var::A2 => KF_A2,
            Var::A3 => KF_A3,
            Var::ObjUid | Var::ObjGid => return None,
        })
    }

    /// The uid-type and gid-type fields `-C` compares (`None`: not comparable).
    pub fn id_kind(self) -> Option<IdKind> {
        match self {
            Var::Auid | Var::Uid | Var::Euid | Var::Suid | Var::Fsuid | Var::ObjUid => Some(IdKind::Uid),
            Var::Gid | Var::Egid | Var::Sgid | Var::Fsgid | Var::ObjGid => Some(IdKind::Gid),
            _ => None,
        }
    }

    pub fn is_obj(self) -> bool {
        matches!(self, Var::ObjUid | Var::ObjGid)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

/// One `-F`/`-C` condition (keys are kept apart, in `Rule::keys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// A numeric field against a value (audit's 32-bit rule value).
    Cmp { var: Var, op: Op, value: u32 },
    /// `path=`: a name of the call is this file (exact).
    Path(String),
    /// `dir=`: a name of the call is this directory or under it.
    Dir(String),
    /// `perm=`: the call's class intersects these `PERM_*` bits.
    Perm(u32),
    /// `exe=` / `exe!=`: the running executable.
    Exe { op: Op, path: String },
    /// `-C left op right`, in the kernel's order (task field first; uid before euid...).
    Compare { left: Var, op: Op, right: Var },
    /// An LSM label field (`subj_type=chronyd_t`): taken only where no labelling LSM runs, so
    /// no task or object has a label and the condition never holds (as the kernel's audit).
    Lsm { field: String, op: Op, value: String },
    /// `fstype=` (the filesystem list): the name's file system magic.
    FsType { op: Op, magic: u32 },
}

impl Cond {
    /// Decided by user space on the record's names.
    pub fn is_user(&self) -> bool {
        match self {
            Cond::Path(_) | Cond::Dir(_) => true,
            Cond::Cmp { var, .. } => var.is_obj(),
            Cond::Compare { left, right, .. } => left.is_obj() || right.is_obj(),
            Cond::Perm(_) | Cond::Exe { .. } | Cond::Lsm { .. } | Cond::FsType { .. } => false,
        }
    }
}

/// Which syscalls a rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syscalls {
    /// `-S all`, or no `-S`.
    All,
    /// Numbers in the table of the rule's arch (x86_64 without `arch=`), ascending.
    Some(Vec<u32>),
}

/// Why a line is not taken: invalid (`Bad`), or valid for auditctl but not supported here.
#[derive(Debug)]
pub(crate) enum LineError {
    Bad(String),
    Unsupported(String),
}
