//! Host path of a (vfsmount, dentry) pair by a bounded walk up d_parent, crossing mount
//! points through mount->mnt_parent/mnt_mountpoint, up to the mount namespace's root.
//! bpf_d_path() is not allowed in tracepoint programs, hence the walk. The walk is one
//! `bpf_loop` callback, verified once instead of once per component (kernel >= 5.17).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_get_smp_processor_id, bpf_loop, bpf_probe_read_kernel};
use tracer_common::{config::OFFSET_UNKNOWN, event::PATH_MAX};

use crate::{
    kernel::{Kptr, add2, off, read, read_ptr},
    maps::SCRATCH,
};

/// Components (and mount crossings) walked at most.
const MAX_DEPTH: u32 = 128;
const NAME_MASK: u32 = 255;
const POS_MASK: u32 = PATH_MAX as u32 - 1;

pub(crate) struct Walked {
    /// The path is `path[start..PATH_MAX]` of this CPU's scratch area.
    pub start: u32,
    pub truncated: bool,
}

#[repr(C)]
struct Step {
    mnt: u64,
    dentry: u64,
    /// Write cursor: the path so far is area[pos..PATH_MAX].
    pos: u32,
    /// 1 when the namespace root was reached, 2 on a read error.
    state: u32,
}

const REACHED_ROOT: u32 = 1;
const FAILED: u32 = 2;

/// One component (or one mount crossing) per call; returns 1 to stop.
#[inline(never)]
extern "C" fn step(_i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the &mut Step that walk() gave it, alive for the whole loop and not
    // otherwise borrowed.
    let st = unsafe { &mut *(ctx as *mut Step) };
    match try_step(st) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(_) => {
            st.state = FAILED;
            1
        }
    }
}

#[inline(always)]
fn try_step(st: &mut Step) -> Result<bool, i64> {
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let s = SCRATCH.get_ptr_mut(cpu).ok_or(-1i64)?;
    // SAFETY: s is this CPU's SCRATCH entry (get_ptr_mut checked the index); only its address is taken.
    let area = unsafe { (*s).path.as_mut_ptr() };
    let mount_mnt = off!(mount_mnt);
    if mount_mnt == OFFSET_UNKNOWN {
        return Err(-1);
    }
    let mnt = st.mnt as Kptr;
    let dentry = st.dentry as Kptr;
    let mnt_root = read_ptr(mnt, off!(vfsmount_mnt_root))?;
    let parent = read_ptr(dentry, off!(dentry_d_parent))?;
    if dentry == mnt_root || dentry == parent {
        let mount = mnt.wrapping_sub(mount_mnt as usize);
        let mparent = read_ptr(mount, off!(mount_mnt_parent))?;
        if mparent == mount {
            st.state = REACHED_ROOT;
            return Ok(false);
        }
        st.dentry = read_ptr(mount, off!(mount_mnt_mountpoint))? as u64;
        st.mnt = mparent.wrapping_add(mount_mnt as usize) as u64;
        return Ok(true);
    }
    let name: u64 = read(dentry, add2(off!(dentry_d_name), off!(qstr_name)))?;
    let len: u32 = read::<u32>(dentry, add2(off!(dentry_d_name), off!(qstr_len)))? & NAME_MASK;
    let p = st.pos;
    if p < len + 1 || p > PATH_MAX as u32 {
        return Ok(false);
    }
    let p = p - (len + 1);
    // SAFETY: p & POS_MASK < PATH_MAX and the name is at most NAME_MASK bytes from there, all inside the 2 *
    // PATH_MAX path area; the source is kernel memory read by the helper (a bad pointer fails).
    unsafe {
        *area.add((p & POS_MASK) as usize) = b'/';
        bpf_probe_read_kernel(area.add(((p + 1) & POS_MASK) as usize).cast(), len & NAME_MASK, name as *const _);
    }
    st.pos = p;
    st.dentry = parent as u64;
    Ok(true)
}

/// Writes the path so that it ends at `area[PATH_MAX]` of this CPU's scratch path area.
#[inline(always)]
pub(crate) fn walk(area: *mut u8, mnt: Kptr, dentry: Kptr) -> Result<Walked, i64> {
    let mut st = Step { mnt: mnt as u64, dentry: dentry as u64, pos: PATH_MAX as u32, state: 0 };
    // SAFETY: step is the callback bpf_loop expects and ctx is our live &mut Step; bpf_loop calls it
    // synchronously.
    unsafe {
        bpf_loop(MAX_DEPTH, step as *mut c_void, (&mut st as *mut Step).cast(), 0);
    }
    if st.state == FAILED {
        return Err(-1);
    }
    let mut p = st.pos;
    if p >= PATH_MAX as u32 {
        p = PATH_MAX as u32 - 1;
        // SAFETY: p & POS_MASK < PATH_MAX: inside the path area.
        unsafe { *area.add((p & POS_MASK) as usize) = b'/' };
    }
    Ok(Walked { start: p, truncated: st.state != REACHED_ROOT })
}
