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

use std::{fmt, path::PathBuf};

pub use tracer_common::rules::{KRule, NrKey, RULES_MAX, RuleBits, RuleNr};

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
        write!(f, "{}:{}", self.file.display(), self.line)
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
    // The parser's model: `rules` decides the rest of the fields.
}

impl Rule {
    /// The rule as understood, in auditctl -l's form (for `tracer rules check`).
    pub fn describe(&self) -> String {
        todo!()
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
    let _ = paths;
    todo!()
}

/// `tracer rules check`: everything parsed, plus every problem (not only the first).
#[derive(Debug, Default)]
pub struct Check {
    pub set: RuleSet,
    /// `FILE:LINE` and why a line is not supported or not valid.
    pub problems: Vec<(Source, String)>,
}

pub fn check(paths: &[PathBuf]) -> Check {
    let _ = paths;
    todo!()
}

/// The kernel tables and the user-side remainder of a rule set.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    /// RULE_NRS entries.
    pub nrs: Vec<(NrKey, RuleNr)>,
    /// RULES entries, index = rule index.
    pub rules: Vec<KRule>,
}

/// Compiles a rule set (resolving `exe=` to inode and device). More than `RULES_MAX` rules,
/// or a rule the kernel tables cannot hold, is an error naming its line.
pub fn compile(set: &RuleSet) -> Result<Compiled, RulesError> {
    let _ = set;
    todo!()
}

/// One name (audit PATH item) of an event as user space resolved it.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    /// Absolute, lexically normalised host path.
    pub path: &'a [u8],
    /// The object's owner (uid, gid), when known.
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
    pub fn decide(&self, cand: &RuleBits, facts: &Facts<'_>) -> Option<usize> {
        let _ = (cand, facts);
        todo!()
    }

    /// The keys of rule `rule` (empty if it has none).
    pub fn keys(&self, rule: usize) -> &[String] {
        let _ = rule;
        todo!()
    }
}

/// Syscall tables: audit's names (x86_64 and i386), numbers, and each call's names (PATH
/// items) for the kernel's record.
pub mod syscalls {
    use super::Arch;
    use tracer_common::rules::NameSpec;

    /// audit's name for `nr` (`ausyscall`), if the table has one.
    pub fn name(arch: Arch, nr: u32) -> Option<&'static str> {
        let _ = (arch, nr);
        todo!()
    }

    /// The number of `name` (or a decimal number) in `arch`'s table.
    pub fn number(arch: Arch, name: &str) -> Option<u32> {
        let _ = (arch, name);
        todo!()
    }

    /// Where the call's names are in its arguments.
    pub fn names(arch: Arch, nr: u32) -> [NameSpec; 2] {
        let _ = (arch, nr);
        todo!()
    }
}
