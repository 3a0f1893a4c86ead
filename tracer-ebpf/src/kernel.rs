//! Portable reads of kernel structs: every offset comes from `OFFSETS` (resolved from the
//! running kernel's BTF by the loader). A missing field reads as `Err`, never a load failure.

use core::ptr::read_volatile;

use aya_ebpf::helpers::generated::{
    bpf_get_current_comm, bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs,
};
use tracer_common::config::OFFSET_UNKNOWN;

/// One field offset of `OFFSETS`.
macro_rules! off {
    ($f:ident) => {
        crate::kernel::volatile(&crate::maps::OFFSETS.$f)
    };
}
pub(crate) use off;

/// One field of `CONFIG`.
macro_rules! conf {
    ($f:ident) => {
        crate::kernel::volatile(&crate::maps::CONFIG.$f)
    };
}
pub(crate) use conf;

pub(crate) type Kptr = *const u8;

/// The running task and its ids, as the helpers give them.
pub(crate) struct Current {
    pub task: Kptr,
    pub pid_tgid: u64,
    pub uid_gid: u64,
}

/// Globals are read volatile so the compiler cannot fold their zero initialisers.
#[inline(always)]
pub(crate) fn volatile<T: Copy>(v: &T) -> T {
    // SAFETY: v is a reference: valid, aligned and initialised for T.
    unsafe { read_volatile(v) }
}

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub(crate) fn read<T: Copy>(base: Kptr, off: u32) -> Result<T, i64> {
    if base.is_null() || off == OFFSET_UNKNOWN {
        return Err(-1);
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper writes at most size_of::<T>() bytes into v, which has that size; the source is any
    // kernel address (a bad one fails, it does not fault).
    let ret = unsafe {
        bpf_probe_read_kernel(v.as_mut_ptr().cast(), size_of::<T>() as u32, base.wrapping_add(off as usize).cast())
    };
    if ret < 0 {
        return Err(ret);
    }
    // SAFETY: the helper succeeded: it filled all size_of::<T>() bytes, and T is a plain kernel value
    // (integers, pointers) for which any bytes are valid.
    Ok(unsafe { v.assume_init() })
}

/// The current task's name into `dst` (NUL-padded). Called straight into the destination:
/// aya's wrapper zeroes a stack copy first, a byte loop (`memset`) in BPF.
#[inline(always)]
pub(crate) fn current_comm(dst: *mut [u8; 16]) -> bool {
    // SAFETY: dst points to 16 writable bytes (callers pass a reference or a MaybeUninit); the helper
    // writes at most that many.
    unsafe { bpf_get_current_comm(dst.cast(), 16) == 0 }
}

/// Reads a `T` at `base + off` of an object the verifier knows by its BTF type (the current
/// task, its saved registers, or a pointer loaded from them): a plain load, which the
/// verifier turns into an exception-guarded one, instead of a helper call. On any other
/// pointer the verifier refuses the program at load: misuse cannot reach a kernel.
#[inline(always)]
pub(crate) fn load<T: Copy>(base: Kptr, off: u32) -> Result<T, i64> {
    if base.is_null() || off == OFFSET_UNKNOWN {
        return Err(-1);
    }
    // SAFETY: base is a BTF-typed kernel pointer and off a field offset from the same BTF: the verifier
    // checks the access against the type and makes it a fault-safe load (a bad address reads as 0).
    Ok(unsafe { read_volatile(base.wrapping_add(off as usize) as *const T) })
}

#[inline(always)]
pub(crate) fn load_ptr(base: Kptr, off: u32) -> Result<Kptr, i64> {
    let p: u64 = load(base, off)?;
    if p == 0 { Err(-1) } else { Ok(p as Kptr) }
}

#[inline(always)]
pub(crate) fn read_ptr(base: Kptr, off: u32) -> Result<Kptr, i64> {
    let p: u64 = read(base, off)?;
    if p == 0 { Err(-1) } else { Ok(p as Kptr) }
}

/// `base + a + b`, unknown if either offset is.
#[inline(always)]
pub(crate) fn add2(a: u32, b: u32) -> u32 {
    if a == OFFSET_UNKNOWN || b == OFFSET_UNKNOWN { OFFSET_UNKNOWN } else { a + b }
}

#[inline(always)]
pub(crate) fn current_task() -> Kptr {
    // SAFETY: a helper without arguments; the BTF-typed task pointer is read through `load` (checked by the
    // verifier) or bpf_probe_read_kernel.
    unsafe { bpf_get_current_task_btf() as Kptr }
}

/// The current task's saved user registers, BTF-typed (read with `load`).
#[inline(always)]
pub(crate) fn current_regs() -> Kptr {
    // SAFETY: bpf_task_pt_regs takes the BTF task pointer of the current task.
    unsafe { bpf_task_pt_regs(current_task() as *mut _) as Kptr }
}

/// The first four syscall arguments from the saved user registers (`current_regs`, or an
/// fexit program's BTF-typed argument).
#[inline(always)]
pub(crate) fn args_of(regs: Kptr) -> [u64; 4] {
    [
        load(regs, off!(regs_di)).unwrap_or(0),
        load(regs, off!(regs_si)).unwrap_or(0),
        load(regs, off!(regs_dx)).unwrap_or(0),
        load(regs, off!(regs_r10)).unwrap_or(0),
    ]
}

/// x86 TS_COMPAT: a 32-bit syscall, numbered from another table.
const TS_COMPAT: u32 = 0x0002;

/// Whether the current task is in a 32-bit (ia32) syscall.
#[inline(always)]
pub(crate) fn compat() -> bool {
    load::<u32>(current_task(), off!(task_ti_status)).map(|s| s & TS_COMPAT != 0).unwrap_or(false)
}

#[inline(always)]
pub(crate) fn loginuid(task: Kptr) -> Result<u32, i64> {
    load::<u32>(task, off!(task_loginuid))
}

/// A `struct path` {mnt, dentry} read from `base + off`.
#[inline(always)]
pub(crate) fn read_path(base: Kptr, off: u32) -> Result<(Kptr, Kptr), i64> {
    if off!(path_mnt) == 0 && off!(path_dentry) == 8 && off != OFFSET_UNKNOWN {
        // The usual layout: both pointers in one read.
        let p: [u64; 2] = read(base, off)?;
        if p[0] == 0 || p[1] == 0 {
            return Err(-1);
        }
        return Ok((p[0] as Kptr, p[1] as Kptr));
    }
    let mnt = read_ptr(base, add2(off, off!(path_mnt)))?;
    let dentry = read_ptr(base, add2(off, off!(path_dentry)))?;
    Ok((mnt, dentry))
}

/// `read_path` of a BTF-typed object (`load`).
#[inline(always)]
pub(crate) fn load_path(base: Kptr, off: u32) -> Result<(Kptr, Kptr), i64> {
    let mnt = load_ptr(base, add2(off, off!(path_mnt)))?;
    let dentry = load_ptr(base, add2(off, off!(path_dentry)))?;
    Ok((mnt, dentry))
}

/// The mount namespace of `task`.
#[inline(always)]
pub(crate) fn mnt_ns(task: Kptr) -> Result<Kptr, i64> {
    let nsproxy = load_ptr(task, off!(task_nsproxy))?;
    load_ptr(nsproxy, off!(nsproxy_mnt_ns))
}

/// Whether the current task passes the in-kernel filters (`--auid`, `--uid`, `--pid`,
/// `--comm`); the tracer itself never does.
#[inline(always)]
pub(crate) fn traced(task: Kptr, pid_tgid: u64, uid_gid: u64) -> bool {
    use tracer_common::config::*;
    let tgid = (pid_tgid >> 32) as u32;
    if tgid == conf!(tracer_tgid) {
        return false;
    }
    let filters = conf!(filters);
    if filters == 0 {
        return true;
    }
    if filters & FILTER_UID != 0 && uid_gid as u32 != conf!(uid) {
        return false;
    }
    if filters & FILTER_AUID != 0 {
        match loginuid(task) {
            Ok(a) if a == conf!(auid) => {}
            _ => return false,
        }
    }
    if filters & FILTER_PID != 0 && crate::maps::TRACED.get_ptr(tgid).is_none() {
        return false;
    }
    if filters & FILTER_COMM != 0 {
        let mut comm = core::mem::MaybeUninit::<[u8; 16]>::uninit();
        if !current_comm(comm.as_mut_ptr()) {
            return false;
        }
        // SAFETY: the helper succeeded: it wrote all 16 bytes (the name, NUL-padded).
        let comm = unsafe { comm.assume_init() };
        // SAFETY: a lookup in our own map with a key on the stack; the value is not read.
        if unsafe { crate::maps::COMMS.get(comm) }.is_none() {
            return false;
        }
    }
    true
}
