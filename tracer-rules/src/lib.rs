//! auditctl rule files for `tracer trace --rules` and `tracer rules check`.
//!
//! `load` parses auditctl(8)'s language as auditctl writes it into a [`RuleSet`]; `compile`
//! turns it into the kernel tables of `tracer_common::rules` plus the user-side remainder;
//! [`Compiled::decide`] finishes the decision for one event from its candidate rules (the
//! `RuleBits` trailer the kernel sends) and its resolved names. The first matching rule wins,
//! as in the kernel's audit filter.
//!
//! CONTRACT (the `kaudit` side codes against these signatures; `rules` fills them in and may
//! add, never change them without telling the lead).

mod classes;
mod compile;
mod decide;
mod describe;
mod fields;
mod lexer;
mod load;
mod lsm;
pub mod model;
mod parse;
pub mod syscalls;
mod task;
mod value;

use std::{fmt, path::PathBuf};

pub use classes::{PermClass, acc_mode, perm_class};
pub use decide::CallFacts;
pub use task::Task;
pub use tracer_common::rules::{KRule, NrKey, RULES_MAX, RuleBits, RuleNr};

use model::{Action, Cond, List, Op, Syscalls};

/// A call's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86_64, `arch=b64`.
    B64,
    /// i386 (a 32-bit call on x86_64), `arch=b32`.
    B32,
}

impl Arch {
    /// audit's AUDIT_ARCH_* value (`arch=c000003e` in SYSCALL records).
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::B64 => 0xc000_003e,
            Arch::B32 => 0x4000_0003,
        }
    }

    /// The kernel tables' `NrKey::compat`.
    pub fn compat(self) -> u32 {
        match self {
            Arch::B64 => 0,
            Arch::B32 => 1,
        }
    }
}

/// Where a rule or a problem is: `FILE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: the file as a whole (unreadable, not a regular file).
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A line that cannot be taken: `FILE:LINE: reason`.
    #[error("{at}: {msg}")]
    Rule { at: Source, msg: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What a control line (`-D`, `-b`, `-f`, `-e`, `-r`, `--backlog_wait_time`,
/// `--loginuid-immutable`, …) did, or a warning about a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub at: Source,
    pub text: String,
}

/// One parsed rule (an `-a`/`-A` syscall rule, or a `-w` watch as auditctl turns it into one).
#[derive(Clone, Debug)]
pub struct Rule {
    pub at: Source,
    /// Keys in the order given (`-k` / `-F key=`), several allowed.
    pub keys: Vec<String>,
    pub action: Action,
    /// The filter list (`exit` unless `-a …,task` or `-a …,filesystem`).
    pub list: List,
    /// `-F arch=` (`=` or `!=`); none: the numbers apply to whichever ABI calls.
    pub arch: Option<(Op, Arch)>,
    /// Numbers in the table of `arch` (x86_64 without one).
    pub syscalls: Syscalls,
    /// The `-F`/`-C` conditions (keys apart), in the order given.
    pub conds: Vec<Cond>,
    /// Written as `-w`.
    pub watch: bool,
}

impl Rule {
    /// The rule as understood, in auditctl -l's form (for `tracer rules check`).
    pub fn describe(&self) -> String {
        describe::describe(self)
    }

    /// Why the kernel's audit would refuse this rule on this machine now, though it is valid:
    /// a `dir=` that does not exist, or a `path=`/`exe=` whose directory does not (auditctl
    /// says "No such file or directory"). tracer takes the rule and matches when it appears.
    pub fn kernel_refuses_here(&self) -> Option<String> {
        self.conds.iter().find_map(|c| {
            let (what, p, need) = match c {
                Cond::Dir(d) => ("dir", d.as_str(), std::path::Path::new(d)),
                Cond::Path(p) => ("path", p.as_str(), std::path::Path::new(p).parent()?),
                Cond::Exe { path, .. } => ("exe", path.as_str(), std::path::Path::new(path).parent()?),
                _ => return None,
            };
            (!need.is_dir()).then(|| {
                format!("{what}={p}: {} does not exist here, so the kernel's audit (auditctl) refuses this rule; tracer matches it once it exists", need.display())
            })
        })
    }
}

/// Parsed rule files, in load order.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub notes: Vec<Note>,
}

/// Every rule file in `paths` (a directory: its `*.rules` in name order, as augenrules),
/// in order; the first bad line is the error.
pub fn load(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
    load::load(paths)
}

/// `tracer rules check`: everything parsed, plus every problem (not only the first).
#[derive(Debug, Default)]
pub struct Check {
    pub set: RuleSet,
    /// `FILE:LINE` and why a line is not supported or not valid.
    pub problems: Vec<(Source, String)>,
}

pub fn check(paths: &[PathBuf]) -> Check {
    load::check(paths)
}

/// The kernel tables and the user-side remainder of a rule set.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    /// RULE_NRS entries.
    pub nrs: Vec<(NrKey, RuleNr)>,
    /// RULES entries, index = rule index in evaluation order: the task list's rules first (in
    /// their order), then the others in load order (the same as `RuleSet::rules` without task
    /// rules).
    pub rules: Vec<KRule>,
    /// Per rule: its user-side conditions, action and keys.
    user: Vec<decide::UserRule>,
    /// The task list, in order.
    task: Vec<task::TaskRule>,
    /// The filesystem list's `never` fstype conditions.
    fs_never: Vec<(Op, u32)>,
}

/// Compiles a rule set (resolving `exe=` to inode and device). More than `RULES_MAX` rules,
/// or a rule the kernel tables cannot hold, is an error naming its line.
pub fn compile(set: &RuleSet) -> Result<Compiled, RulesError> {
    compile::compile(set)
}

/// One name (audit PATH item) of an event as user space resolved it.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    /// Absolute, lexically normalised host path.
    pub path: &'a [u8],
    /// The object's owner (uid, gid), when known (`None`: compared as 0, as the kernel does
    /// for a name it did not resolve).
    pub owner: Option<(u32, u32)>,
}

/// The task's ids at the call, as the record carries them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ids {
    pub auid: u32,
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
}

/// What user space knows about one event, to finish the rule decision.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub arch: Arch,
    pub nr: u32,
    pub ret: i64,
    pub ids: Ids,
    pub names: &'a [Name<'a>],
}

impl Compiled {
    /// The first candidate, in rule order, whose user-side conditions hold: `Some(rule)` if
    /// its action is `always`, `None` if there is none or it is `never` (the event is dropped).
    /// As the kernel's audit: the non-`path=` candidates first (the exit list), then, for each
    /// of `facts.names` in order, the `path=` candidates (`KRULE_WATCH`) before that match,
    /// which take over: the first rule in order wins, and between watches the first name. `facts.names` are the call's audit PATH items (parents
    /// included, as the kernel's names list); a name without an owner counts as uid/gid 0, as
    /// the kernel's unresolved names do.
    pub fn decide(&self, cand: &RuleBits, facts: &Facts<'_>) -> Option<usize> {
        decide::decide(self, cand, facts)
    }

    /// Whether a candidate rule compares the names' owners (`obj_uid`/`obj_gid`): only then
    /// must user space find them (an `lstat` per name).
    pub fn needs_owners(&self, cand: &RuleBits) -> bool {
        decide::needs_owners(self, cand)
    }

    /// The keys of rule `rule` (empty if it has none).
    pub fn keys(&self, rule: usize) -> &[String] {
        self.user.get(rule).map_or(&[], |u| u.keys.as_slice())
    }
}
