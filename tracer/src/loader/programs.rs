//! Which programs attach to which hooks, and loading them: the verifier's work (most of
//! start→attached) runs for every program at once, one thread each, and the programs are
//! then attached one by one in the order below.

use std::path::Path;

use aya::{
    Ebpf,
    maps::ProgramArray,
    programs::{FExit, Program, RawTracePoint, TracePoint},
};
use tracer_common::config::*;

use super::LoadError;
use crate::tracefs;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hook {
    /// A tracefs tracepoint: (category, name).
    Tracepoint(&'static str, &'static str),
    /// A raw tracepoint by name (always `raw_syscalls` here).
    Raw(&'static str),
    /// A raw tracepoint of another category: (category, name).
    RawIn(&'static str, &'static str),
    /// Not attached: `raw_sys_exit` tail-calls it for this family (slot = the bit's index
    /// in the `EXITS` program array).
    Exit(u32),
}

struct Prog {
    func: &'static str,
    hook: Hook,
    /// Attached when any of these families is enabled (0: always).
    families: u32,
}

const fn tp(func: &'static str, category: &'static str, name: &'static str, families: u32) -> Prog {
    Prog { func, hook: Hook::Tracepoint(category, name), families }
}

const fn raw(func: &'static str, name: &'static str, families: u32) -> Prog {
    Prog { func, hook: Hook::Raw(name), families }
}

/// `family`'s part of the syscall exits, loaded when the family is enabled.
const fn exit(func: &'static str, family: u32) -> Prog {
    Prog { func, hook: Hook::Exit(family), families: family }
}

/// Fork/exit first, so a child of a followed process can never slip between attachments;
/// exec last (after the syscall exits, which the trampolines attach before this list), so a
/// reported exec is never followed by calls that went unreported because their hook was not
/// attached yet.
const PROGS: &[Prog] = &[
    tp("sched_process_fork", "sched", "sched_process_fork", 0),
    tp("sched_process_exit", "sched", "sched_process_exit", 0),
    // Before the syscall exits: they keep entry numbers the kernel rewrites (probes/entry.rs).
    tp("entry_exec", "task", "task_rename", ENABLE_SYSCOUNT | ENABLE_RULES),
    tp("entry_signal", "signal", "signal_deliver", ENABLE_SYSCOUNT),
    // ENABLE_SSHLOG: accept(2) exits of a trusted sshd remember the connection socket.
    raw(
        "raw_sys_exit",
        "sys_exit",
        ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT | ENABLE_SYSCOUNT | ENABLE_SSHLOG | ENABLE_DNS | ENABLE_LISTEN,
    ),
    exit("exit_open", ENABLE_OPEN),
    exit("exit_connect", ENABLE_CONNECT),
    exit("exit_accept", ENABLE_SSHLOG),
    exit("exit_exec", ENABLE_EXEC),
    exit("exit_dns", ENABLE_DNS),
    exit("exit_listen", ENABLE_LISTEN),
    // `trace --rules`: its own program on every exit (the families' one is not attached).
    raw("raw_sys_exit_rules", "sys_exit", ENABLE_RULES),
    raw("raw_sys_enter", "sys_enter", ENABLE_SSHLOG),
    tp("sched_process_exec", "sched", "sched_process_exec", ENABLE_EXEC),
    // `tracer ci`: TCP connects followed to established or failed.
    Prog { func: "conn_state", hook: Hook::RawIn("sock", "inet_sock_set_state"), families: ENABLE_CONNECT_OUTCOME },
];

/// Loads (verifies) every program the enabled families need, concurrently, then attaches
/// them in `PROGS` order. `use_fexit`: the syscall exits are on trampolines already.
pub(super) fn load_and_attach(
    ebpf: &mut Ebpf,
    tracefs: &Path,
    enabled: u32,
    use_fexit: bool,
    debug: bool,
) -> Result<(), LoadError> {
    let wanted: Vec<&Prog> = PROGS
        .iter()
        .filter(|p| p.families == 0 || enabled & p.families != 0)
        .filter(|p| !(use_fexit && (p.func == "raw_sys_exit" || matches!(p.hook, Hook::Exit(_)))))
        .collect();
    for prog in &wanted {
        let (category, name) = prog.hook.tracepoint();
        if !tracefs::exists(tracefs, category, name) {
            return Err(LoadError::MissingTracepoint(format!("{category}/{name}")));
        }
    }
    let mut programs: Vec<(&Prog, &mut Program)> =
        ebpf.programs_mut().filter_map(|(name, p)| wanted.iter().find(|w| w.func == name).map(|w| (*w, p))).collect();
    if let Some(missing) = wanted.iter().find(|w| !programs.iter().any(|(p, _)| p.func == w.func)) {
        return Err(LoadError::Other(format!("program {} not in object", missing.func)));
    }
    // The kernel verifies privileged loads concurrently; the largest program (the syscall
    // exits) no longer waits for the others.
    let loaded: Vec<Result<(), LoadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = programs
            .iter_mut()
            .map(|(prog, program)| {
                let prog: &Prog = prog;
                let program: &mut Program = program;
                s.spawn(move || {
                    let t = std::time::Instant::now();
                    let r = load_one(prog, program);
                    if debug {
                        let insns = program.info().ok().and_then(|i| i.verified_instruction_count());
                        eprintln!("tracer: verified {} in {:?} ({insns:?} instructions)", prog.func, t.elapsed());
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(LoadError::Other("a program load panicked".into()))))
            .collect()
    });
    loaded.into_iter().collect::<Result<Vec<()>, _>>()?;
    // The families' programs go in their slots before raw_sys_exit is attached.
    let mut slots = Vec::new();
    for (prog, program) in &programs {
        if let Hook::Exit(family) = prog.hook {
            let err = |source| LoadError::Program { name: prog.func.into(), source };
            slots.push((family.trailing_zeros(), program.fd().map_err(err)?.try_clone().map_err(|e| err(e.into()))?));
        }
    }
    drop(programs);
    let mut exits: ProgramArray<_> =
        ProgramArray::try_from(ebpf.map_mut("EXITS").ok_or(LoadError::Other("no EXITS map".into()))?)
            .map_err(|e| LoadError::Map("EXITS", e))?;
    for (slot, fd) in &slots {
        exits.set(*slot, fd, 0).map_err(|e| LoadError::Map("EXITS", e))?;
    }
    for prog in wanted {
        let program = ebpf
            .program_mut(prog.func)
            .ok_or_else(|| LoadError::Other(format!("program {} not in object", prog.func)))?;
        attach_one(prog, program)?;
        if debug {
            let how = match prog.hook {
                Hook::Exit(family) => format!("(raw_sys_exit's tail call, EXITS slot {})", family.trailing_zeros()),
                h => format!("({}/{})", h.tracepoint().0, h.tracepoint().1),
            };
            eprintln!("tracer: loaded and attached {} {how}", prog.func);
        }
    }
    Ok(())
}

impl Hook {
    /// The tracefs (category, name) the hook is listed under.
    fn tracepoint(self) -> (&'static str, &'static str) {
        match self {
            Hook::Tracepoint(c, n) | Hook::RawIn(c, n) => (c, n),
            Hook::Raw(n) => ("raw_syscalls", n),
            Hook::Exit(_) => ("raw_syscalls", "sys_exit"),
        }
    }
}

fn load_one(prog: &Prog, program: &mut Program) -> Result<(), LoadError> {
    let err = |source| LoadError::Program { name: prog.func.into(), source };
    match prog.hook {
        Hook::Tracepoint(..) => {
            let p: &mut TracePoint = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
        Hook::Raw(..) | Hook::RawIn(..) | Hook::Exit(_) => {
            let p: &mut RawTracePoint = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
    }
}

fn attach_one(prog: &Prog, program: &mut Program) -> Result<(), LoadError> {
    let err = |source| LoadError::Program { name: prog.func.into(), source };
    let (category, name) = prog.hook.tracepoint();
    match prog.hook {
        Hook::Tracepoint(..) => {
            let p: &mut TracePoint = program.try_into().map_err(err)?;
            p.attach(category, name).map(drop).map_err(err)
        }
        Hook::Raw(..) | Hook::RawIn(..) => {
            let p: &mut RawTracePoint = program.try_into().map_err(err)?;
            p.attach(name).map(drop).map_err(err)
        }
        Hook::Exit(_) => Ok(()),
    }
}

/// (program, syscall wrapper, family) for the trampoline path.
const FEXITS: &[(&str, &str, u32)] = &[
    ("fexit_open", "__x64_sys_open", ENABLE_OPEN),
    ("fexit_creat", "__x64_sys_creat", ENABLE_OPEN),
    ("fexit_openat", "__x64_sys_openat", ENABLE_OPEN),
    ("fexit_openat2", "__x64_sys_openat2", ENABLE_OPEN),
    ("fexit_connect", "__x64_sys_connect", ENABLE_CONNECT),
    ("fexit_execve", "__x64_sys_execve", ENABLE_EXEC),
    ("fexit_execveat", "__x64_sys_execveat", ENABLE_EXEC),
];

/// Attaches every trampoline or none: on any failure the ones attached are unloaded, so
/// the raw-tracepoint fallback never reports a call twice.
pub(super) fn attach_fexit(ebpf: &mut Ebpf, enabled: u32) -> Result<(), LoadError> {
    let r = attach_fexit_with(ebpf, enabled, &aya::Btf::from_sys_fs().map_err(|e| LoadError::Btf(e.to_string()))?);
    // aya's parse of the kernel BTF leaves many small freed blocks in the heap: hand them
    // back before the ring buffer's pages are touched (peak RSS).
    // SAFETY: malloc_trim only releases free memory (glibc; musl's allocator has none).
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
    r
}

fn attach_fexit_with(ebpf: &mut Ebpf, enabled: u32, btf: &aya::Btf) -> Result<(), LoadError> {
    let mut done: Vec<&str> = Vec::new();
    let mut result = Ok(());
    for &(func, target, family) in FEXITS {
        if enabled & family == 0 {
            continue;
        }
        let err = |source| LoadError::Program { name: func.into(), source };
        let r = (|| {
            let p: &mut FExit = ebpf
                .program_mut(func)
                .ok_or_else(|| LoadError::Other(format!("program {func} not in object")))?
                .try_into()
                .map_err(err)?;
            p.load(target, btf).map_err(err)?;
            p.attach().map_err(err)?;
            Ok(())
        })();
        if let Err(e) = r {
            result = Err(e);
            break;
        }
        done.push(func);
    }
    if result.is_err() {
        for func in done {
            if let Some(p) = ebpf.program_mut(func) {
                let p: Result<&mut FExit, _> = p.try_into();
                if let Ok(p) = p {
                    let _ = p.unload();
                }
            }
        }
    }
    result
}
