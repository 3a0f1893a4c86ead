//! One line of a rule file, read as auditctl reads its options (getopt order; `-k` and
//! `-F key=` collect the keys; `-w` sets up a watch).

use std::path::Path;

use tracer_common::rules::{PERM_ATTR, PERM_EXEC, PERM_READ, PERM_WRITE};

use crate::{
    Arch, Rule, Source,
    fields::{field, perm_bits},
    model::{Action, Cond, List, Op, Syscalls},
    syscalls,
};

/// audit's key limit (`AUDIT_MAX_KEY_LEN`), all keys of a rule joined by \x01.
pub(crate) const KEY_MAX: usize = 256;
/// `AUDIT_MAX_FIELDS - 1`: fields a rule may have (keys, arch included).
const FIELDS_MAX: usize = 63;

/// What a line asks for.
#[derive(Debug)]
pub(crate) enum Item {
    Add {
        rule: Rule,
        prepend: bool,
    },
    Delete(Rule),
    /// `-D`: delete every rule so far.
    Clear,
    /// A control line, and what it means for tracer.
    Note(String),
}

use crate::model::LineError::{self, Bad, Unsupported};

#[derive(Default)]
struct State {
    list: Option<(Action, bool, bool)>, // action, prepend, delete
    filter: Option<List>,
    watch: bool,
    arch: Option<(Op, Arch)>,
    syscalls: Option<Vec<u32>>,
    all: bool,
    conds: Vec<Cond>,
    keys: Vec<String>,
    cond_dep: bool, // auditctl's "a watch, syscall, perm or exe given before -k"
}

/// Options that take an argument (auditctl's getopt string and long options).
fn takes_arg(opt: &str) -> bool {
    matches!(
        opt,
        "-C" | "-e"
            | "-f"
            | "-r"
            | "-b"
            | "-a"
            | "-A"
            | "-d"
            | "-S"
            | "-F"
            | "-m"
            | "-R"
            | "-w"
            | "-W"
            | "-k"
            | "-p"
            | "-q"
    ) || opt == "--backlog_wait_time"
}

pub(crate) fn line(words: &[String], at: &Source) -> Result<Vec<Item>, LineError> {
    let mut st = State::default();
    let mut items = Vec::new();
    let mut first_bad: Option<String> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        i += 1;
        // `-Fx` is `-F x`, as getopt.
        let (opt, attached) = if w.starts_with("--") {
            (w, None)
        } else if w.len() > 2 && w.starts_with('-') && w.is_char_boundary(2) && takes_arg(&w[..2]) {
            (&w[..2], Some(&w[2..]))
        } else {
            (w, None)
        };
        let arg = if takes_arg(opt) {
            match attached {
                Some(a) => Some(a),
                None if i < words.len() => {
                    i += 1;
                    Some(words[i - 1].as_str())
                }
                None => return Err(Bad(format!("{opt} needs an argument"))),
            }
        } else {
            None
        };
        let arg_str = arg.unwrap_or("");
        match opt {
            "-a" | "-A" | "-d" => {
                if st.list.is_some() || st.watch {
                    return Err(Bad("one rule per line: -a/-A/-d/-w given twice".into()));
                }
                let (action, filter) = list(arg_str)?;
                st.list = Some((action, opt == "-A", opt == "-d"));
                st.filter = Some(filter);
            }
            "-w" | "-W" => {
                if st.list.is_some() || st.watch {
                    return Err(Bad("-w can't be given with a syscall rule (-a) or twice".into()));
                }
                st.watch = true;
                st.list = Some((Action::Always, false, opt == "-W"));
                st.cond_dep = true;
                st.all = true;
                st.conds.push(watch_target(arg_str)?);
                st.conds.push(Cond::Perm(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_ATTR));
            }
            "-p" => {
                if st.list.is_none() {
                    return Err(Bad("-p needs a watch (-w) given before it".into()));
                }
                let p = perm_bits(arg_str).map_err(Bad)?;
                match st.conds.iter_mut().find(|c| matches!(c, Cond::Perm(_))) {
                    Some(c) => *c = Cond::Perm(p),
                    None => st.conds.push(Cond::Perm(p)),
                }
                st.cond_dep = true;
            }
            "-S" => {
                if st.watch {
                    return Err(Bad("a watch (-w) takes no -S".into()));
                }
                match st.filter {
                    Some(List::Task) => return Err(Bad("syscall auditing being added to task list (auditctl refuses -S on the task list)".into())),
                    Some(List::Filesystem) => return Err(Bad("the filesystem list takes no -S".into())),
                    _ => {}
                }
                add_syscalls(&mut st, arg_str)?;
            }
            "-F" => {
                if st.list.is_none() {
                    return Err(Bad("the list (-a always,exit) must be given before -F".into()));
                }
                if let Some(k) = arg_str.strip_prefix("key=") {
                    let fs = st.filter == Some(List::Filesystem);
                    if !(fs || st.cond_dep || st.syscalls.is_some() || st.all) {
                        return Err(Bad("Key field needs a watch, syscall or exe path given prior to it (as auditctl)".into()));
                    }
                    add_key(&mut st, k)?;
                    continue;
                }
                if arg_str.starts_with("arch") && (st.syscalls.is_some() || st.all) {
                    return Err(Bad("-F arch= must come before -S (auditctl reads the names in the arch's table)".into()));
                }
                // A bad value is reported unless the line also has something unsupported
                // (check then says why the line cannot apply at all).
                let parsed = match field(arg_str) {
                    Err(Bad(m)) => {
                        first_bad.get_or_insert(m);
                        continue;
                    }
                    other => other?,
                };
                if let Some(why) = list_refuses(st.filter.unwrap_or(List::Exit), &parsed) {
                    return Err(why);
                }
                match parsed {
                    crate::fields::Parsed::Arch(op, a) => st.arch = Some((op, a)),
                    crate::fields::Parsed::Cond(c) => {
                        if matches!(c, Cond::Perm(_) | Cond::Exe { .. } | Cond::Path(_) | Cond::Dir(_)) {
                            st.cond_dep = true;
                        }
                        st.conds.push(c);
                    }
                }
            }
            "-C" => {
                if st.list.is_none() {
                    return Err(Bad("the list (-a always,exit) must be given before -C".into()));
                }
                if st.filter == Some(List::Filesystem) {
                    return Err(Bad("the filesystem list takes only fstype and key (the kernel refuses other fields)".into()));
                }
                st.conds.push(crate::fields::compare(arg_str)?);
            }
            "-k" => {
                let fs = st.filter == Some(List::Filesystem);
                if st.list.is_none() || !(fs || st.cond_dep || st.syscalls.is_some() || st.all) {
                    return Err(Bad("-k needs a watch or syscall given before it".into()));
                }
                add_key(&mut st, arg_str)?;
            }
            "-D" => items.push(Item::Clear),
            "-b" => {
                number(opt, arg_str)?;
                items.push(Item::Note(format!("-b {arg_str}: the kernel audit backlog limit; ignored (tracer's ring buffer size is --ring-size)")));
            }
            "-f" => {
                if !matches!(arg_str, "0" | "1" | "2") {
                    return Err(Bad(format!("-f takes 0, 1 or 2, not {arg_str:?}")));
                }
                items.push(Item::Note(format!("-f {arg_str}: audit's failure mode; ignored (tracer counts lost events and never panics the machine)")));
            }
            "-e" => {
                let text = match arg_str {
                    "0" => "-e 0: disables the kernel's audit; ignored (tracer applies the rules while it traces)",
                    "1" => "-e 1: enables the kernel's audit; nothing to do for tracer",
                    "2" => "-e 2: locks the kernel's audit rules until reboot; ignored (tracer's rules are loaded once per run and cannot change while it traces)",
                    _ => return Err(Bad(format!("-e takes 0, 1 or 2, not {arg_str:?}"))),
                };
                items.push(Item::Note(text.into()));
            }
            "-r" => {
                number(opt, arg_str)?;
                items.push(Item::Note(format!("-r {arg_str}: audit's message rate limit; ignored (tracer does not rate-limit events)")));
            }
            "--backlog_wait_time" => {
                number(opt, arg_str)?;
                items.push(Item::Note(format!("--backlog_wait_time {arg_str}: audit's backlog wait; ignored (tracer never delays a task)")));
            }
            "--loginuid-immutable" => items.push(Item::Note(
                "--loginuid-immutable: locks the loginuid in the kernel; not applied by tracer (it reads the auid as the kernel has it)".into(),
            )),
            "--reset-lost" => items.push(Item::Note("--reset-lost: resets audit's lost counter; ignored (tracer counts its own lost events)".into())),
            "-i" => items.push(Item::Note("-i: auditctl ignores errors in the file; tracer refuses any bad line regardless (nothing is half-loaded)".into())),
            "-c" => items.push(Item::Note("-c: auditctl continues past errors; tracer refuses any bad line regardless (nothing is half-loaded)".into())),
            "-l" | "-s" | "-h" | "-v" | "-m" | "-R" | "-t" | "-q" | "--signal" | "--help" | "--version" => {
                return Err(Unsupported(format!("{opt}: a command, not a rule; tracer only loads rules")));
            }
            _ => return Err(Bad(format!("unknown option or stray argument {w:?}"))),
        }
    }
    if let Some(m) = first_bad {
        return Err(Bad(m));
    }
    if let Some((action, prepend, delete)) = st.list {
        let rule = finish(st, action, at)?;

        items.push(if delete { Item::Delete(rule) } else { Item::Add { rule, prepend } });
    } else if st.syscalls.is_some() || st.all || !st.keys.is_empty() {
        return Err(Bad("no list given (-a always,exit or -w)".into()));
    }
    Ok(items)
}

fn number(opt: &str, s: &str) -> Result<(), LineError> {
    crate::value::c_number(s)
        .filter(|n| *n >= 0)
        .map(|_| ())
        .ok_or_else(|| Bad(format!("{opt} takes a number, not {s:?}")))
}

/// Fields a list does not take: the kernel refuses them (`audit_field_valid`, watches and
/// trees on the exit list only), or tracer cannot evaluate them there.
fn list_refuses(list: List, f: &crate::fields::Parsed) -> Option<LineError> {
    use crate::fields::Parsed;
    match (list, f) {
        (List::Filesystem, Parsed::Cond(Cond::FsType { .. })) => None,
        (List::Filesystem, _) => {
            Some(Bad("the filesystem list takes only fstype and key (the kernel refuses other fields)".into()))
        }
        (_, Parsed::Cond(Cond::FsType { .. })) => {
            Some(Bad("fstype is a field of the filesystem list only (-a never,filesystem)".into()))
        }
        (List::Task, Parsed::Cond(Cond::Path(_) | Cond::Dir(_))) => {
            Some(Bad("path= and dir= are for the exit list only (the kernel refuses them on the task list)".into()))
        }
        (List::Task, Parsed::Cond(Cond::Exe { .. })) => {
            Some(Unsupported("exe= on the task list: tracer does not evaluate it there".into()))
        }
        _ => None,
    }
}

/// `always,exit` in either order.
fn list(s: &str) -> Result<(Action, List), LineError> {
    let mut parts = s.split(',');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Bad(format!("{s:?}: expected ACTION,LIST (always,exit)")));
    };
    let act = |w: &str| match w {
        "always" => Some(Action::Always),
        "never" => Some(Action::Never),
        _ => None,
    };
    let (action, l) = match (act(a), act(b)) {
        (Some(x), None) => (x, b),
        (None, Some(x)) => (x, a),
        _ => return Err(Bad(format!("{s:?}: expected ACTION,LIST with ACTION always or never"))),
    };
    match l {
        "exit" => Ok((action, List::Exit)),
        "task" => Ok((action, List::Task)),
        "filesystem" => Ok((action, List::Filesystem)),
        "user" | "exclude" | "io_uring" => {
            Err(Unsupported(format!("the {l} list: tracer evaluates rules at syscall exit only (the exit list)")))
        }
        "entry" => Err(Bad("the entry list is deprecated (auditctl refuses it)".into())),
        _ => Err(Bad(format!("unknown list {l:?}"))),
    }
}

fn watch_target(p: &str) -> Result<Cond, LineError> {
    if !p.starts_with('/') {
        return Err(Bad(format!("watch path {p:?} must start with '/'")));
    }
    if p.len() >= 4096 || Path::new(p).file_name().is_some_and(|b| b.len() > 255) {
        return Err(Bad("watch path too long".into()));
    }
    let trimmed = if p.len() > 2 { p.trim_end_matches('/') } else { p };
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    // auditctl: a directory that exists now is a subtree (dir=), anything else a file (path=).
    Ok(if Path::new(trimmed).is_dir() { Cond::Dir(trimmed.into()) } else { Cond::Path(trimmed.into()) })
}

fn add_syscalls(st: &mut State, arg: &str) -> Result<(), LineError> {
    let arch = st.arch.map_or(Arch::B64, |(_, a)| a);
    for name in arg.split(',').filter(|n| !n.is_empty()) {
        if name == "all" {
            st.all = true;
            continue;
        }
        let nr = match syscalls::number(arch, name) {
            Some(nr) => nr,
            None if arch == Arch::B64 && syscalls::number(Arch::B32, name).is_some() => {
                return Err(Unsupported(format!("x86_64 has no syscall {name}")));
            }
            None => return Err(Bad(format!("unknown syscall {name:?} ({} table)", arch_name(arch)))),
        };
        let list = st.syscalls.get_or_insert_with(Vec::new);
        if !list.contains(&nr) {
            list.push(nr);
        }
    }
    st.syscalls.get_or_insert_with(Vec::new);
    Ok(())
}

pub(crate) fn arch_name(a: Arch) -> &'static str {
    match a {
        Arch::B64 => "x86_64",
        Arch::B32 => "i386",
    }
}

fn add_key(st: &mut State, k: &str) -> Result<(), LineError> {
    if k.is_empty() {
        return Err(Bad("empty key".into()));
    }
    if k.contains('\x01') {
        return Err(Bad("a key may not contain \\x01 (audit's key separator)".into()));
    }
    let joined: usize = st.keys.iter().map(|k| k.len() + 1).sum::<usize>() + k.len();
    if joined > KEY_MAX {
        return Err(Bad(format!("keys longer than audit's {KEY_MAX} bytes")));
    }
    st.keys.push(k.to_string());
    Ok(())
}

fn finish(st: State, action: Action, at: &Source) -> Result<Rule, LineError> {
    let watches = st.conds.iter().filter(|c| matches!(c, Cond::Path(_) | Cond::Dir(_))).count();
    if watches > 1 {
        return Err(Bad("one path= or dir= per rule (as the kernel)".into()));
    }
    let nfields = st.conds.len() + usize::from(st.arch.is_some()) + usize::from(!st.keys.is_empty());
    if nfields > FIELDS_MAX {
        return Err(Bad(format!("more than audit's {FIELDS_MAX} fields in one rule")));
    }
    let syscalls = match st.syscalls {
        Some(mut v) if !st.all => {
            v.sort_unstable();
            Syscalls::Some(v)
        }
        _ => Syscalls::All,
    };
    let list = st.filter.unwrap_or(List::Exit);
    Ok(Rule { at: at.clone(), keys: st.keys, action, list, arch: st.arch, syscalls, conds: st.conds, watch: st.watch })
}
