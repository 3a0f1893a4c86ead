//! Who an sshd message is about, from the kernel's own state and never from its text:
//! - trusted: the current process runs with euid 0 and its executable (`mm->exe_file`) is one
//!   of the sshd binaries user space vetted, by (inode, device) — never by process name;
//! - accept(2)/accept4(2) in a trusted process remembers the new socket (`SSH_SOCKS`);
//! - at message time the process's descriptors are walked for remembered sockets, inherited
//!   through fork and exec by every process of that connection, and the peer is read from
//!   the socket (`skc_daddr` / `skc_v6_daddr`, `skc_dport`).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use tracer_common::{
    connect::{AF_INET, AF_INET6},
    sshlog::{ExeKey, PEER_AMBIGUOUS, PEER_FOUND, PEER_NONE, SockKey},
};

use super::Syscall;
use crate::{
    kernel::{Kptr, off, read, read_ptr},
    maps::{SSH_SOCKS, SSHD_EXES},
};

/// Descriptors looked at, at most (sshd closes everything above its few at start).
const MAX_FDS: u32 = 1024;
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

/// Whether `task` is a trusted sshd: euid 0 and a vetted executable.
#[inline(always)]
pub(crate) fn trusted(task: Kptr) -> bool {
    let euid = read_ptr(task, off!(task_cred)).and_then(|c| read::<u32>(c, off!(cred_euid)));
    if euid != Ok(0) {
        return false;
    }
    let Ok(key) = exe_key(task) else {
        return false;
    };
    // SAFETY: only whether the entry exists is looked at; the value is never read.
    unsafe { SSHD_EXES.get(key) }.is_some()
}

/// The (inode, device) of the task's executable.
#[inline(always)]
pub(crate) fn exe_key(task: Kptr) -> Result<ExeKey, i64> {
    let mm = read_ptr(task, off!(task_mm))?;
    inode_key(read_ptr(read_ptr(mm, off!(mm_exe_file))?, off!(file_f_inode))?)
}

/// An inode's (inode number, device).
#[inline(always)]
pub(crate) fn inode_key(inode: Kptr) -> Result<ExeKey, i64> {
    let ino: u64 = read(inode, off!(inode_i_ino))?;
    let sb = read_ptr(inode, off!(inode_i_sb))?;
    let dev: u32 = read(sb, off!(sb_s_dev))?;
    Ok(ExeKey { ino, dev, _pad: 0 })
}

/// The `struct sock` and socket inode number of an open file, if it is a socket.
#[inline(always)]
fn sock_of(file: Kptr) -> Result<SockKey, i64> {
    let inode = read_ptr(file, off!(file_f_inode))?;
    let mode: u16 = read(inode, off!(inode_i_mode))?;
    if mode & S_IFMT != S_IFSOCK {
        return Err(-1);
    }
    let ino: u64 = read(inode, off!(inode_i_ino))?;
    let socket = read_ptr(file, off!(file_private_data))?;
    let sk = read_ptr(socket, off!(socket_sk))?;
    Ok(SockKey { sk: sk as u64, ino })
}

/// The current task's descriptor array and its size.
#[inline(always)]
pub(crate) fn fd_array(task: Kptr) -> Result<(Kptr, u32), i64> {
    let files = read_ptr(task, off!(task_files))?;
    let fdt = read_ptr(files, off!(files_fdt))?;
    let max: u32 = read(fdt, off!(fdt_max_fds))?;
    Ok((read_ptr(fdt, off!(fdt_fd))?, max))
}

/// accept(2)/accept4(2) returned descriptor `call.ret`: remember the socket if a trusted sshd
/// accepted it from an IPv4/IPv6 peer.
#[inline(always)]
pub(crate) fn on_accept(call: Syscall) {
    let _ = try_accept(call);
}

#[inline(always)]
fn try_accept(call: Syscall) -> Result<(), i64> {
    let task = crate::kernel::current_task();
    if call.ret < 0 || !trusted(task) {
        return Ok(());
    }
    let (array, max) = fd_array(task)?;
    let fd = call.ret as u32;
    if fd >= max || fd >= MAX_FDS {
        return Ok(());
    }
    let file = read_ptr(array, fd * 8)?;
    let key = sock_of(file)?;
    let family: u16 = read(key.sk as Kptr, off!(sk_family))?;
    if family != AF_INET && family != AF_INET6 {
        return Ok(());
    }
    SSH_SOCKS.insert(key, 1, 0).map_err(i64::from)
}

/// The peer found by `peer_of`.
#[repr(C)]
pub(crate) struct Peer {
    pub(crate) status: u32,
    pub(crate) family: u16,
    pub(crate) port: u16,
    /// The address bytes as stored in the sock (IPv4: the low 4 bytes of the first word).
    pub(crate) addr: [u64; 2],
}

#[repr(C)]
struct Walk {
    array: u64,
    peer: Peer,
}

/// One descriptor per call; returns 1 to stop (ambiguous: nothing more to learn).
#[inline(never)]
extern "C" fn step(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `Walk` that `peer_of` owns on its stack.
    let w = unsafe { &mut *(ctx as *mut Walk) };
    let Ok(file) = read::<u64>(w.array as Kptr, (i as u32 & (MAX_FDS - 1)) * 8) else {
        return 0;
    };
    if file == 0 {
        return 0;
    }
    let Ok(key) = sock_of(file as Kptr) else {
        return 0;
    };
    // SAFETY: only whether the entry exists is looked at; the value is never read.
    if unsafe { SSH_SOCKS.get(key) }.is_none() {
        return 0;
    }
    let sk = key.sk as Kptr;
    let Ok(family) = read::<u16>(sk, off!(sk_family)) else {
        return 0;
    };
    // As the kernel stores them (network byte order), compared as two words.
    let addr: [u64; 2] = if family == AF_INET {
        match read::<u32>(sk, off!(sk_daddr)) {
            Ok(a) => [u64::from(a), 0],
            Err(_) => return 0,
        }
    } else if family == AF_INET6 {
        match read::<[u64; 2]>(sk, off!(sk_v6_daddr)) {
            Ok(a) => a,
            Err(_) => return 0,
        }
    } else {
        return 0;
    };
    let port = read::<u16>(sk, off!(sk_dport)).map(u16::from_be).unwrap_or(0);
    let p = &mut w.peer;
    if p.status == PEER_NONE {
        *p = Peer { status: PEER_FOUND, family, port, addr };
        return 0;
    }
    // The same connection on several descriptors (dup2 before sshd's re-exec) is one peer.
    if p.family == family && p.addr[0] == addr[0] && p.addr[1] == addr[1] {
        return 0;
    }
    p.status = PEER_AMBIGUOUS;
    1
}

/// The peer of the accepted sockets the current task holds.
#[inline(always)]
pub(crate) fn peer_of(task: Kptr) -> Peer {
    let none = Peer { status: PEER_NONE, family: 0, port: 0, addr: [0; 2] };
    let Ok((array, max)) = fd_array(task) else {
        return none;
    };
    let n = if max > MAX_FDS { MAX_FDS } else { max };
    let mut w = Walk { array: array as u64, peer: none };
    // SAFETY: `step` only touches the `Walk` given here, which outlives the call.
    unsafe {
        bpf_loop(n, step as *mut c_void, (&mut w as *mut Walk).cast(), 0);
    }
    w.peer
}
