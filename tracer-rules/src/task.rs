//! The task list and the filesystem list, decided in user space.
//!
//! The kernel's audit evaluates the task list once, when a task is created
//! (`audit_alloc` → `audit_filter_task`): the first task rule that holds decides, and a
//! `never` one leaves the task without an audit context, so none of its calls is recorded,
//! whatever the exit rules say. Nothing of a call is known there (no arch, exit, success,
//! a0..a3, perm, object): such conditions never hold. tracer evaluates the list on the
//! task's ids at each call instead of at its creation (a task that changed ids since fork is
//! judged by its ids now), and `pid` is the calling process's.
//!
//! The filesystem list (`-a never,filesystem -F fstype=…`): audit does not collect a name
//! whose inode is on such a file system (`__audit_inode`), so no watch, `path=` or `dir=`
//! rule sees it. tracer drops those names before deciding.

use crate::{
    Compiled, Ids,
    decide::task_id,
    model::{Action, Cond, Op, Var},
};

#[derive(Clone, Debug)]
pub(crate) struct TaskRule {
    pub(crate) action: Action,
    pub(crate) conds: Vec<Cond>,
    /// `-F arch=`: no call at task creation, so it never holds.
    pub(crate) arch: bool,
}

/// The task a call came from, for the task list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Task {
    pub ids: Ids,
    /// Process (thread group) id, and its parent's.
    pub pid: u32,
    pub ppid: u32,
    pub sessionid: u32,
}

fn value(t: &Task, v: Var) -> Option<u32> {
    Some(match v {
        Var::Pid => t.pid,
        Var::Ppid => t.ppid,
        Var::SessionId => t.sessionid,
        Var::LoginuidSet => u32::from(t.ids.auid != u32::MAX),
        Var::Auid | Var::Uid | Var::Euid | Var::Suid | Var::Fsuid | Var::Gid | Var::Egid | Var::Sgid | Var::Fsgid => {
            task_id(&t.ids, v)
        }
        // Facts of a call or an object: none at task creation.
        Var::Exit | Var::Success | Var::A0 | Var::A1 | Var::A2 | Var::A3 | Var::ObjUid | Var::ObjGid => return None,
    })
}

impl TaskRule {
    /// Whether the rule names only facts a task has (no call, object or label).
    pub(crate) fn can_hold(&self) -> bool {
        let task_var = |v: Var| value(&Task::default(), v).is_some();
        !self.arch
            && self.conds.iter().all(|c| match c {
                Cond::Cmp { var, .. } => task_var(*var),
                Cond::Compare { left, right, .. } => task_var(*left) && task_var(*right),
                _ => false,
            })
    }

    fn holds(&self, t: &Task) -> bool {
        !self.arch
            && self.conds.iter().all(|c| match c {
                Cond::Cmp { var, op, value: v } => value(t, *var).is_some_and(|l| op.holds(l, *v)),
                Cond::Compare { left, op, right } => match (value(t, *left), value(t, *right)) {
                    (Some(l), Some(r)) => op.holds(l, r),
                    _ => false,
                },
                // Labels (none here), perm (no call): never hold.
                _ => false,
            })
    }
}

impl Compiled {
    /// The task list: false when the first task rule that holds for `t` is `never` (the
    /// task's calls are not audited at all).
    pub fn task_audited(&self, t: &Task) -> bool {
        self.task.iter().find(|r| r.holds(t)).is_none_or(|r| r.action == Action::Always)
    }

    /// Whether any `-a never,filesystem` rule exists (names need their file system).
    pub fn has_fs_rules(&self) -> bool {
        !self.fs_never.is_empty()
    }

    /// The filesystem list: a name on a file system with this magic (`statfs`'s `f_type`)
    /// is not collected.
    pub fn hides_fs(&self, magic: u32) -> bool {
        self.fs_never.iter().any(|&(op, v): &(Op, u32)| op.holds(magic, v))
    }
}
