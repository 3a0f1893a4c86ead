//! `trace --rules`: auditctl rules evaluated at syscall exit (`tracer_common::rules` says
//! how the work is split with user space). An unmatched call costs the `RULE_NRS` lookups;
//! a matched one walks its rules in order with `bpf_loop`, comparing the kernel conditions
//! exactly as audit's `audit_filter_rules` (u32 operands), and becomes a record only when
//! some rule may select it: the record carries the candidate rules as its trailer.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_probe_read_user, generated::bpf_loop},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use tracer_common::{
    event::{EventKind, F_COMPAT},
    rules::*,
    syscall::{NAME_BASE_UNKNOWN, NAME_INODE, NameRec, SyscallBody},
};

use super::{
    Syscall, connect, entry, exec,
    nr::*,
    open,
    sshpeer::{fd_array, inode_key},
};
use crate::{
    kernel::{Current, Kptr, args_of, current_regs, current_task, load, loginuid, off, read, read_ptr, traced},
    maps::{RULE_EVAL, RULE_NRS, RULES, RuleEval},
    record::Rec,
};

const AT_FDCWD: i32 = tracer_common::open::AT_FDCWD;
const SOCKADDR_MAX: u32 = 128;
/// i386 `SYS_BIND` for socketcall's class.
const SYS_BIND: u64 = 2;

/// Every syscall exit, with `trace --rules` (attached under `ENABLE_RULES` only, so the
/// other exits' program and its verification stay as they were).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn raw_sys_exit_rules(ctx: RawTracePointContext) -> i32 {
    // The task's BTF-typed registers (read by `load`), the same pt_regs as the argument.
    let regs = current_regs();
    let ret: i64 = ctx.arg(1);
    let Ok(nr) = load::<i64>(regs, off!(regs_orig_ax)) else {
        return 0;
    };
    let nr = nr as u32;
    // A new child's return is not audited (its audit context is not in a syscall).
    if ret == 0 && matches!(nr, NR_CLONE | NR_FORK | NR_VFORK | NR_CLONE3) {
        return 0;
    }
    let (nr, compat) = entry::entered(nr, crate::kernel::compat(), ret);
    on_exit(regs, nr, compat, ret);
    0
}

/// A syscall exit (`nr`, `compat` as entered). Returns without any work past the lookups
/// when no rule names the call.
#[inline(always)]
fn on_exit(regs: Kptr, nr: u32, compat: bool, ret: i64) {
    let c = u32::from(compat);
    // SAFETY: lookups in our own map with keys on the stack; the loader fills it before attaching and
    // never removes an entry, so the value stays valid for this run.
    let rn = match unsafe { RULE_NRS.get(NrKey { compat: c, nr }) } {
        Some(rn) => rn,
        // SAFETY: as above.
        None => match unsafe { RULE_NRS.get(NrKey { compat: c, nr: NR_OTHER }) } {
            Some(rn) => rn,
            None => return,
        },
    };
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    if !traced(task, pid_tgid, uid_gid) {
        return;
    }
    let cur = Current { task, pid_tgid, uid_gid };
    let args = if compat { args32_of(regs) } else { args_of(regs) };
    let Some(e) = RULE_EVAL.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: e is this CPU's RULE_EVAL entry (get_ptr_mut checked the index); programs do not nest on a
    // CPU, so nothing else uses it while this one runs.
    let e = unsafe { &mut *e };
    gather(e, &cur, rn, args, ret, compat);
    // One verified callback per rule index instead of an unrolled loop.
    // SAFETY: rule_step is the callback bpf_loop expects; it takes no context (it finds RULE_EVAL itself).
    unsafe { bpf_loop(RULES_MAX as u32, rule_step as *mut c_void, core::ptr::null_mut(), 0) };
    // Nothing may select the call, or its first candidate is a decided `never`: the first
    // rule in order wins, watches included (audit's rule priorities).
    if e.ncand == 0 || e.first_never != 0 {
        return;
    }
    let call = Syscall { nr, args, regs, ret, rules: true };
    if compat {
        if ret == 0 && (nr == NR_IA32_EXECVE || nr == NR_IA32_EXECVEAT) {
            exec::on_success_exit(call, true);
        } else {
            let _ = generic(&cur, call, rn, true);
        }
        return;
    }
    match nr {
        NR_OPEN | NR_CREAT | NR_OPENAT | NR_OPENAT2 => open::on_exit(call),
        NR_CONNECT => connect::on_exit(call),
        NR_EXECVE | NR_EXECVEAT if ret < 0 => exec::on_failed(call),
        NR_EXECVE | NR_EXECVEAT => exec::on_success_exit(call, false),
        _ => {
            let _ = generic(&cur, call, rn, false);
        }
    }
}

/// The first four arguments of an i386 call (bx, cx, dx, si), as audit's a0..a3.
#[inline(always)]
fn args32_of(regs: Kptr) -> [u64; 4] {
    let r = |o: u32| read::<u64>(regs, o).map(|v| v & 0xFFFF_FFFF).unwrap_or(0);
    [r(off!(regs_bx)), r(off!(regs_cx)), r(off!(regs_dx)), r(off!(regs_si))]
}

/// audit's ACC_MODE: the permission class of open flags.
#[inline(always)]
fn acc_mode(flags: u64) -> u32 {
    match flags & 3 {
        0 => PERM_READ,
        1 => PERM_WRITE,
        _ => PERM_READ | PERM_WRITE,
    }
}

/// Fills the facts the rules compare.
#[inline(always)]
fn gather(e: &mut RuleEval, cur: &Current, rn: &RuleNr, args: [u64; 4], ret: i64, compat: bool) {
    let task = cur.task;
    e.vals = [0; 32];
    e.ncand = 0;
    e.first_never = 0;
    e.has_names = u32::from(rn.names[0].kind != NAME_NONE || rn.names[1].kind != NAME_NONE);
    e.rules = rn.rules;
    e.cand = RuleBits::default();
    let v = &mut e.vals;
    v[KF_UID as usize] = cur.uid_gid as u32;
    v[KF_GID as usize] = (cur.uid_gid >> 32) as u32;
    let ids: [u32; 8] = read_ptr(task, off!(task_cred))
        .and_then(|cred| read::<[u32; 8]>(cred, off!(cred_uid)))
        .unwrap_or([u32::MAX; 8]);
    // struct cred: uid gid suid sgid euid egid fsuid fsgid.
    v[KF_SUID as usize] = ids[2];
    v[KF_SGID as usize] = ids[3];
    v[KF_EUID as usize] = ids[4];
    v[KF_EGID as usize] = ids[5];
    v[KF_FSUID as usize] = ids[6];
    v[KF_FSGID as usize] = ids[7];
    let auid = loginuid(task).unwrap_or(u32::MAX);
    v[KF_AUID as usize] = auid;
    v[KF_LOGINUID_SET as usize] = u32::from(auid != u32::MAX);
    v[KF_SESSIONID as usize] = read::<u32>(task, off!(task_sessionid)).unwrap_or(u32::MAX);
    v[KF_PID as usize] = (cur.pid_tgid >> 32) as u32;
    v[KF_PPID as usize] =
        read_ptr(task, off!(task_real_parent)).and_then(|p| read::<u32>(p, off!(task_tgid))).unwrap_or(0);
    v[KF_EXIT as usize] = ret as u32;
    v[KF_SUCCESS as usize] = u32::from(!(-4095..=-1).contains(&ret));
    v[KF_A0 as usize] = args[0] as u32;
    v[KF_A1 as usize] = args[1] as u32;
    v[KF_A2 as usize] = args[2] as u32;
    v[KF_A3 as usize] = args[3] as u32;
    v[KF_ARCH as usize] = if compat { 0x4000_0003 } else { 0xc000_003e };
    let pa = args[(rn.perm_arg & 3) as usize];
    e.perm = match rn.perm_from {
        PERM_OPEN_FLAGS => acc_mode(pa),
        // SAFETY: the helper copies from any user address (a bad one is an error: no class).
        PERM_OPEN_HOW => unsafe { bpf_probe_read_user(pa as *const u64) }.map(acc_mode).unwrap_or(0),
        PERM_SOCKETCALL if args[0] == SYS_BIND => PERM_WRITE,
        PERM_SOCKETCALL => 0,
        _ => rn.perm,
    };
    // Read on first use: most rules never look at the executable.
    e.exe_known = EXE_UNREAD;
}

/// `RuleEval::exe_known` before the executable was looked at.
const EXE_UNREAD: u32 = 2;

/// Whether the running executable is (`ino`, `dev`), reading it once per call.
#[inline(always)]
fn exe_is(e: &mut RuleEval, ino: u64, dev: u32) -> bool {
    if e.exe_known == EXE_UNREAD {
        match super::sshpeer::exe_key(current_task()) {
            Ok(k) => {
                e.exe_ino = k.ino;
                e.exe_dev = k.dev;
                e.exe_known = 1;
            }
            Err(_) => e.exe_known = 0,
        }
    }
    e.exe_known == 1 && e.exe_ino == ino && e.exe_dev == dev
}

/// audit_comparator on u32 operands.
#[inline(always)]
fn compare(left: u32, op: u16, right: u32) -> bool {
    match op {
        OP_EQ => left == right,
        OP_NE => left != right,
        OP_LT => left < right,
        OP_GT => left > right,
        OP_LE => left <= right,
        OP_GE => left >= right,
        OP_BITMASK => left & right != 0,
        OP_BITTEST => left & right == right,
        _ => false,
    }
}

#[inline(always)]
fn field_holds(e: &mut RuleEval, f: &KField) -> bool {
    match f.code {
        // audit_match_perm: the operator is not used.
        KF_PERM => e.perm & (f.value as u32) != 0,
        KF_EXE => {
            let same = exe_is(e, f.value, f.value2);
            if f.op == OP_NE { !same } else { same }
        }
        KF_CMP => {
            let l = e.vals[(f.value & 31) as usize];
            let r = e.vals[(f.value2 & 31) as usize];
            compare(l, f.op, r)
        }
        code => compare(e.vals[(code & 31) as usize], f.op, f.value as u32),
    }
}

/// The next rule RULE_NRS named for this call (the lowest bit left in `e.rules`, which it
/// clears): if its kernel conditions hold, a candidate (`Compiled::candidates` in
/// tracer-rules is the reference). Returns 1 to stop when no rule is left. Only the named
/// rules cost a step, however many rules there are.
#[inline(never)]
extern "C" fn rule_step(_n: u64, _ctx: *mut c_void) -> i64 {
    let Some(e) = RULE_EVAL.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's RULE_EVAL entry, as in on_exit (which is waiting in bpf_loop).
    let e = unsafe { &mut *e };
    let w = if e.rules.words[0] != 0 {
        0
    } else if e.rules.words[1] != 0 {
        1
    } else if e.rules.words[2] != 0 {
        2
    } else if e.rules.words[3] != 0 {
        3
    } else {
        return 1;
    };
    let word = e.rules.words[w];
    let bit = word & word.wrapping_neg();
    e.rules.words[w] = word & !bit;
    let i = (w as u32) * 64 + bit.trailing_zeros();
    let Some(r) = RULES.get_ptr(i) else {
        return 1;
    };
    // SAFETY: RULES entry i (get_ptr checked the index); plain integers, read only.
    let r = unsafe { &*r };
    // Conditions on names cannot hold for a call that has none (`-S all -F dir=…` on close).
    if r.flags & KRULE_USER != 0 && e.has_names == 0 {
        return 0;
    }
    let mut walk = Fields { rule: i, failed: 0 };
    // SAFETY: field_step is the callback bpf_loop expects and ctx is our live &mut Fields; bpf_loop calls it
    // synchronously.
    unsafe {
        bpf_loop(r.nfields.min(RULE_FIELDS_MAX as u32), field_step as *mut c_void, (&mut walk as *mut Fields).cast(), 0)
    };
    if walk.failed != 0 {
        return 0;
    }
    e.cand.words[w] |= bit;
    e.ncand += 1;
    if r.flags & KRULE_USER == 0 {
        // Decided: no later rule can come before it.
        if e.ncand == 1 && r.action == ACTION_NEVER {
            e.first_never = 1;
        }
        return 1;
    }
    0
}

#[repr(C)]
struct Fields {
    rule: u32,
    /// 1 once a condition did not hold.
    failed: u32,
}

/// Condition `j` of the rule; returns 1 to stop at the first that does not hold.
#[inline(never)]
extern "C" fn field_step(j: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the &mut Fields rule_step gave it, alive for the whole loop.
    let w = unsafe { &mut *(ctx as *mut Fields) };
    let (Some(e), Some(r)) = (RULE_EVAL.get_ptr_mut(0), RULES.get_ptr(w.rule)) else {
        w.failed = 1;
        return 1;
    };
    // SAFETY: this CPU's RULE_EVAL entry and RULES entry `rule` (read only), both checked by get_ptr*; the
    // callers up the stack (rule_step, on_exit) touch the entry only before and after their bpf_loop
    // returns, and no other program runs on this CPU meanwhile.
    let (e, r) = unsafe { (&mut *e, &*r) };
    let Some(f) = r.fields.get(j as usize) else {
        w.failed = 1;
        return 1;
    };
    if field_holds(e, f) {
        0
    } else {
        w.failed = 1;
        1
    }
}

/// The generic record: names, cwd and socket address of a call with no record of its own.
#[inline(always)]
fn generic(cur: &Current, call: Syscall, rn: &RuleNr, compat: bool) -> Result<(), i64> {
    let mut rec = Rec::new::<SyscallBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Syscall, cur, call.nr, call.ret, false);
    rec.set_args(call.args);
    if compat {
        rec.header().flags |= F_COMPAT;
    }
    let e = RULE_EVAL.get_ptr_mut(0).ok_or(-1i64)?;
    // SAFETY: this CPU's RULE_EVAL entry (checked by get_ptr_mut); the rule walk is over and no other
    // program runs on this CPU meanwhile.
    unsafe {
        (*e).args = call.args;
        (*e).specs = rn.names;
        (*e).names = [NameRec::default(); 2];
    }
    // Both names through one callback, verified once: inline, every combination of the two
    // names' kinds was verified apart, past 6.1's million-instruction limit.
    // SAFETY: name_step is the callback bpf_loop expects; it takes no context (it finds RULE_EVAL itself).
    unsafe { bpf_loop(2, name_step as *mut c_void, core::ptr::null_mut(), 0) };
    // SAFETY: as above; name_step has returned.
    let [n0, n1] = unsafe { (*e).names };
    let cwd_len = rec.push_cwd(cur.task).unwrap_or(0);
    let mut sockaddr_len = 0;
    if !compat {
        let (addr, len) = match call.nr {
            NR_BIND => (call.args[1], call.args[2] as u32),
            NR_ACCEPT | NR_ACCEPT4 if call.ret >= 0 && call.args[1] != 0 && call.args[2] != 0 => {
                // SAFETY: the helper copies from any user address (a bad one is an error: no address).
                (call.args[1], unsafe { bpf_probe_read_user(call.args[2] as *const u32) }.unwrap_or(0))
            }
            _ => (0, 0),
        };
        if addr != 0 && len > 0 {
            let len = if len > SOCKADDR_MAX { SOCKADDR_MAX } else { len };
            sockaddr_len = rec.push_user(addr, len & 0xFF) as u16;
        }
    }
    let body = rec.body::<SyscallBody>();
    body.names = [n0, n1];
    body.cwd_len = cwd_len;
    body.sockaddr_len = sockaddr_len;
    rec.push_rules();
    rec.submit();
    Ok(())
}

/// Name `i` of the call (RULE_EVAL's `specs`, `args`) into the record under assembly
/// (`Rec::resume`), its `NameRec` into RULE_EVAL's `names`.
#[inline(never)]
extern "C" fn name_step(i: u64, _ctx: *mut c_void) -> i64 {
    let (Some(e), Some(mut rec)) = (RULE_EVAL.get_ptr_mut(0), Rec::resume()) else {
        return 1;
    };
    // SAFETY: this CPU's RULE_EVAL entry (checked by get_ptr_mut); generic() waits in bpf_loop.
    let e = unsafe { &mut *e };
    let i = (i & 1) as usize;
    let (spec, arg, dirfd) =
        (e.specs[i], e.args[(e.specs[i].arg & 3) as usize], e.args[(e.specs[i].dirfd_arg & 3) as usize]);
    // Written in place in the map, the arguments picked here: 6.1 counts this frame into the
    // 512 bytes the nested walk callback shares with the program.
    name(&mut rec, current_task(), spec, arg, dirfd as i32, &mut e.names[i]);
    0
}

/// One name of the call pushed as `NameSpec` says: the string and its base, or the fd's path.
/// `arg` is the argument the spec names, `dirfd` the one its `dirfd_arg` names.
#[inline(always)]
fn name(rec: &mut Rec, task: Kptr, spec: NameSpec, arg: u64, dirfd: i32, n: &mut NameRec) {
    *n = NameRec { kind: spec.kind, ..NameRec::default() };
    if spec.arg > 3 {
        n.kind = NAME_NONE;
        return;
    }
    match spec.kind {
        NAME_PATH | NAME_PATH_AT => {
            let at = rec.off();
            n.path_len = rec.push_user_str(arg);
            if n.path_len == 0 || rec.byte_at(at) != b'/' {
                let dfd = if spec.kind == NAME_PATH { AT_FDCWD } else { dirfd };
                let base = if dfd == AT_FDCWD { rec.push_cwd(task) } else { rec.push_fd_path(task, dfd) };
                match base {
                    Ok(len) => n.base_len = len,
                    Err(_) => n.flags |= NAME_BASE_UNKNOWN,
                }
            }
        }
        NAME_FD => {
            let fd = arg as i32;
            n.path_len = rec.push_fd_path(task, fd).unwrap_or(0);
            if fd_inode(task, fd, n).is_ok() {
                n.flags |= NAME_INODE;
            }
        }
        _ => n.kind = NAME_NONE,
    }
}

/// The owner, mode, inode and device of descriptor `fd`'s file.
#[inline(always)]
fn fd_inode(task: Kptr, fd: i32, n: &mut NameRec) -> Result<(), i64> {
    let (array, max) = fd_array(task)?;
    if fd < 0 || fd as u32 >= max {
        return Err(-1);
    }
    let file = read_ptr(array, (fd as u32) * 8)?;
    let inode = read_ptr(file, off!(file_f_inode))?;
    let key = inode_key(inode)?;
    n.ino = key.ino;
    n.dev = key.dev;
    n.uid = read(inode, off!(inode_i_uid))?;
    n.gid = read(inode, off!(inode_i_gid))?;
    n.mode = u32::from(read::<u16>(inode, off!(inode_i_mode))?);
    Ok(())
}
