//! Files to a rule set: `load` (the first problem is the error) and `check` (every problem).

use std::path::{Path, PathBuf};

use crate::{
    Arch, Check, Note, RULES_MAX, Rule, RuleSet, RulesError, Source, lexer,
    model::{Action, Cond, LineError, List, Syscalls},
    parse::{self, Item},
    syscalls,
};

/// Where loading stands; `problems` collects (check) or stops at the first (load).
struct Loader {
    set: RuleSet,
    problems: Vec<(Source, String)>,
    over_max: bool,
    /// The file came from a directory: augenrules moves `-D` to the top of the rules.
    augenrules: bool,
}

impl Loader {
    fn file(&mut self, path: &Path, first_only: bool) -> Result<(), RulesError> {
        let lines = match lexer::read_lines(path) {
            Ok(l) => l,
            Err(e) if first_only => return Err(e),
            Err(e) => {
                let RulesError::Io { source, .. } = &e else { return Err(e) };
                self.problems.push((Source { file: path.to_path_buf(), line: 0 }, format!("cannot read: {source}")));
                return Ok(());
            }
        };
        for (line, words) in lines {
            let at = Source { file: path.to_path_buf(), line };
            let res = words.map_err(LineError::Bad).and_then(|w| parse::line(&w, &at));
            match res {
                Ok(items) => {
                    for item in items {
                        self.apply(item, &at);
                    }
                }
                Err(LineError::Bad(msg)) => self.problems.push((at, msg)),
                Err(LineError::Unsupported(msg)) => self.problems.push((at, format!("unsupported: {msg}"))),
            }
            if first_only && let Some((at, msg)) = self.problems.first() {
                return Err(RulesError::Rule { at: at.clone(), msg: msg.clone() });
            }
        }
        Ok(())
    }

    fn apply(&mut self, item: Item, at: &Source) {
        match item {
            Item::Add { rule, prepend } => {
                if self.set.rules.len() >= RULES_MAX {
                    if !self.over_max {
                        self.over_max = true;
                        self.problems.push((
                            at.clone(),
                            format!("more than {RULES_MAX} rules (tracer's kernel tables hold {RULES_MAX})"),
                        ));
                    }
                    return;
                }
                if let Some(n) = arch_warning(&rule) {
                    self.set.notes.push(n);
                }
                if let Some(text) = rule.kernel_refuses_here() {
                    self.set.notes.push(Note { at: at.clone(), text });
                }
                if let Some(text) = list_note(&rule) {
                    self.set.notes.push(Note { at: at.clone(), text });
                }
                if prepend {
                    self.set.rules.insert(0, rule);
                } else {
                    self.set.rules.push(rule);
                }
            }
            Item::Delete(rule) => {
                let want = rule.describe();
                match self.set.rules.iter().position(|r| r.describe() == want) {
                    Some(i) => {
                        self.set.rules.remove(i);
                        self.set.notes.push(Note { at: at.clone(), text: format!("deletes the rule of {}", rule.at) });
                    }
                    None => self.problems.push((at.clone(), "no such rule to delete".into())),
                }
            }
            Item::Clear if self.augenrules => self.set.notes.push(Note {
                at: at.clone(),
                text: "-D: augenrules puts it before every rule of the directory; nothing to delete".into(),
            }),
            Item::Clear => {
                let n = self.set.rules.len();
                self.set.rules.clear();
                self.over_max = false;
                self.set
                    .notes
                    .push(Note { at: at.clone(), text: format!("-D: deletes every rule loaded before it ({n})") });
            }
            Item::Note(text) => self.set.notes.push(Note { at: at.clone(), text }),
        }
    }
}

/// How tracer applies a rule that is not a plain exit rule.
fn list_note(r: &Rule) -> Option<String> {
    if let Some(Cond::Lsm { field, .. }) = r.conds.iter().find(|c| matches!(c, Cond::Lsm { .. })) {
        let lsms = crate::lsm::unlabelled().unwrap_or_default();
        return Some(format!(
            "{field}: no LSM here labels tasks or files (active: {lsms}), so the condition never holds and the rule never matches, as in the kernel's audit"
        ));
    }
    match (r.list, r.action) {
        (List::Task, _) => Some(
            "the task list: the first task rule that holds decides, over every exit rule (never: none of the task's calls is recorded; always: every one is); tracer judges the task by its ids at each call (audit: once, at fork)".into(),
        ),
        (List::Filesystem, Action::Never) => Some(
            "the filesystem list: names on these file systems are not collected, so no watch, path= or dir= rule sees them (tracer reads each name's file system with statfs)".into(),
        ),
        (List::Filesystem, Action::Always) => Some("the filesystem list: an always rule has no effect (audit's too)".into()),
        (List::Exit, _) => None,
    }
}

/// auditctl's "32/64 bit syscall mismatch": an arch-less rule's x86_64 numbers also apply to
/// i386 calls, where they are other calls.
fn arch_warning(r: &Rule) -> Option<Note> {
    let Syscalls::Some(list) = &r.syscalls else { return None };
    if r.arch.is_some() {
        return None;
    }
    let differ: Vec<&str> = list
        .iter()
        .filter_map(|&nr| syscalls::name(Arch::B64, nr))
        .filter(|n| syscalls::number(Arch::B32, n) != syscalls::number(Arch::B64, n))
        .collect();
    (!differ.is_empty()).then(|| Note {
        at: r.at.clone(),
        text: format!(
            "no arch: the x86_64 numbers of {} also match the i386 calls with those numbers (the kernel's rule; auditctl warns too)",
            differ.join(",")
        ),
    })
}

pub(crate) fn load(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
    let mut l = Loader { set: RuleSet::default(), problems: Vec::new(), over_max: false, augenrules: false };
    for (f, from_dir) in lexer::expand(paths)? {
        l.augenrules = from_dir;
        l.file(&f, true)?;
    }
    Ok(l.set)
}

pub(crate) fn check(paths: &[PathBuf]) -> Check {
    let mut l = Loader { set: RuleSet::default(), problems: Vec::new(), over_max: false, augenrules: false };
    let files = match lexer::expand(paths) {
        Ok(f) => f,
        Err(RulesError::Io { path, source }) => {
            l.problems.push((Source { file: path, line: 0 }, format!("cannot read: {source}")));
            // Still check the paths that can be read.
            paths.iter().filter(|p| p.is_file()).map(|p| (p.clone(), false)).collect()
        }
        Err(RulesError::Rule { at, msg }) => {
            l.problems.push((at, msg));
            Vec::new()
        }
    };
    for (f, from_dir) in files {
        l.augenrules = from_dir;
        let _ = l.file(&f, false);
    }
    // What compile would refuse, for every rule (compile stops at the first).
    for r in &l.set.rules {
        if let Err(msg) = crate::compile::split(r) {
            l.problems.push((r.at.clone(), msg));
        }
    }
    Check { set: l.set, problems: l.problems }
}
