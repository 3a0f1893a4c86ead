//! `tracer protect`'s in-kernel filter (`PROTECT_ONLY`): an open or connect becomes an event
//! only when it touches what user space protects, decided on the kernel's objects, never on
//! names a process chose:
//! - an open for reading whose new file's (inode, device) is a protected key, by a task whose
//!   executable's (inode, device) is not allowed (a copy of cat named ssh-keygen is another inode);
//! - a connect whose unix socket's peer was accepted on an agent's socket file (the peer keeps
//!   the listener's bound path), however the client named it (relative, through a link).

use tracer_common::{connect::AF_UNIX, protect::InodeKey};

use super::sshpeer::{exe_key, fd_array, inode_key};
use crate::{
    kernel::{Kptr, off, read, read_ptr},
    maps::{AGENT_SOCKS, ALLOWED_EXES, DENIED, PROTECTED},
};

const EPERM: i64 = 1;

/// Whether the failed call was denied by `enforce` (which leaves the thread in `DENIED`),
/// and what it had reached (an agent's socket file; zero for an open).
#[inline(always)]
fn was_denied(ret: i64) -> Option<InodeKey> {
    if ret != -EPERM {
        return None;
    }
    let tid = aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32;
    // SAFETY: the value is plain integers, copied out at once.
    let reached = unsafe { DENIED.get(tid) }.copied();
    if reached.is_some() {
        let _ = DENIED.remove(tid);
    }
    reached
}

const O_ACCMODE: u64 = 0o3;
const O_WRONLY: u64 = 0o1;
const O_PATH: u64 = 0o10000000;

/// The open file behind the current task's descriptor `fd`.
#[inline(always)]
fn file_of(task: Kptr, fd: i64) -> Result<Kptr, i64> {
    let (array, max) = fd_array(task)?;
    if fd < 0 || fd >= i64::from(max) {
        return Err(-1);
    }
    read_ptr(array, (fd as u32) * 8)
}

/// Whether an open that returned `ret` with `flags` read a protected key from an executable
/// that is not allowed to.
#[inline(always)]
pub(crate) fn key_read(task: Kptr, ret: i64, flags: u64) -> bool {
    if ret < 0 {
        return was_denied(ret).is_some();
    }
    if flags & O_PATH != 0 || flags & O_ACCMODE == O_WRONLY {
        return false;
    }
    file_of(task, ret).is_ok_and(|f| protected_for(task, f))
}

/// Whether `file` is a protected key and the task's executable is not allowed to read it.
#[inline(always)]
pub(crate) fn protected_for(task: Kptr, file: Kptr) -> bool {
    let Ok(key) = read_ptr(file, off!(file_f_inode)).and_then(inode_key) else {
        return false;
    };
    // SAFETY: only whether the entry exists is looked at; the value is never read.
    if unsafe { PROTECTED.get(key) }.is_none() {
        return false;
    }
    match exe_key(task) {
        // SAFETY: as above.
        Ok(exe) => unsafe { ALLOWED_EXES.get(exe) }.is_none(),
        // No executable to vouch for it (a kernel thread cannot open files here): report.
        Err(_) => true,
    }
}

/// Whether a connect that returned `ret` reached an agent's socket file (`reached`: from
/// `unix_file`), or, failed, whether `enforce` denied it: `reached` is then the agent the
/// LSM program judged (the name the client gave may point elsewhere by the time it is read).
#[inline(always)]
pub(crate) fn agent_connect(reached: &mut Option<InodeKey>, ret: i64) -> bool {
    if ret < 0 {
        let Some(key) = was_denied(ret) else { return false };
        if key.ino != 0 {
            *reached = Some(key);
        }
        return true;
    }
    let Some(key) = *reached else {
        return false;
    };
    // SAFETY: only whether the entry exists is looked at; the value is never read.
    unsafe { AGENT_SOCKS.get(key) }.is_some()
}

/// The (inode, device) of the socket file that descriptor `fd`'s unix socket is connected
/// to: its peer's bound file (an accepted sock keeps its listener's).
#[inline(always)]
pub(crate) fn unix_file(task: Kptr, fd: i64) -> Result<InodeKey, i64> {
    let file = file_of(task, fd)?;
    let sk = read_ptr(read_ptr(file, off!(file_private_data))?, off!(socket_sk))?;
    if read::<u16>(sk, off!(sk_family))? != AF_UNIX {
        return Err(-1);
    }
    // `struct unix_sock` starts with its `struct sock`.
    bound_file(read_ptr(sk, off!(unix_peer))?)
}

/// The (inode, device) of the socket file a unix sock is bound to (an accepted sock keeps
/// its listener's).
#[inline(always)]
pub(crate) fn bound_file(sk: Kptr) -> Result<InodeKey, i64> {
    let dentry = read_ptr(sk, off!(unix_path_dentry))?;
    inode_key(read_ptr(dentry, off!(dentry_d_inode))?)
}
