//! `tracer ci`'s DNS capture: read(2), write(2), sendto(2), recvfrom(2) exits of traced
//! processes on a socket whose peer port is 53 (resolvers connect their UDP socket to the
//! server), or a sendto/recvfrom addressed to or from port 53 on an unconnected socket,
//! carry the message's first bytes. sendmmsg/recvmsg are not followed: glibc sends
//! its A and AAAA queries with sendmmsg but reads each answer, which repeats the question,
//! with recvfrom.

use aya_ebpf::helpers::bpf_probe_read_user;
use tracer_common::{
    config::ENABLE_DNS,
    connect::{AF_INET, AF_INET6},
    dns::{DIR_RECV, DIR_SEND, DNS_MAX, DnsBody},
    event::EventKind,
};

use super::{
    Syscall, current_if_traced,
    nr::{NR_RECVFROM, NR_SENDTO, NR_WRITE},
    sshpeer::fd_array,
};
use crate::{
    kernel::{Kptr, off, read, read_ptr},
    record::Rec,
};

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const DNS_PORT: u16 = 53;
/// A DNS header is 12 bytes: anything shorter is no message.
const HEADER: i64 = 12;

/// The `struct sock` behind descriptor `fd` of `task`, if it is a socket.
#[inline(always)]
pub(crate) fn sock_of_fd(task: Kptr, fd: i32) -> Result<Kptr, i64> {
    let (array, max) = fd_array(task)?;
    if fd < 0 || fd as u32 >= max {
        return Err(-1);
    }
    let file = read_ptr(array, (fd as u32) * 8)?;
    let inode = read_ptr(file, off!(file_f_inode))?;
    let mode: u16 = read(inode, off!(inode_i_mode))?;
    if mode & S_IFMT != S_IFSOCK {
        return Err(-1);
    }
    let socket = read_ptr(file, off!(file_private_data))?;
    read_ptr(socket, off!(socket_sk))
}

/// An unconnected socket's sendto to port 53, or recvfrom from it: the address is the fifth
/// argument (`struct sockaddr_in`/`_in6` start with the family and the port).
#[inline(always)]
fn addressed_to_dns(call: Syscall) -> bool {
    if call.nr != NR_SENDTO && call.nr != NR_RECVFROM {
        return false;
    }
    let Ok(addr) = read::<u64>(call.regs, off!(regs_r8)) else {
        return false;
    };
    if addr == 0 {
        return false;
    }
    // SAFETY: bpf_probe_read_user copies from any user address (a bad one is an error).
    let Ok(sa) = (unsafe { bpf_probe_read_user(addr as *const [u16; 2]) }) else {
        return false;
    };
    (sa[0] == AF_INET || sa[0] == AF_INET6) && u16::from_be(sa[1]) == DNS_PORT
}

#[inline(always)]
pub(crate) fn on_exit(call: Syscall) {
    let _ = try_exit(call);
}

#[inline(always)]
fn try_exit(call: Syscall) -> Result<(), i64> {
    if call.ret < HEADER {
        return Ok(());
    }
    let cur = current_if_traced(ENABLE_DNS).ok_or(-1i64)?;
    let fd = call.args[0] as i32;
    let sk = sock_of_fd(cur.task, fd)?;
    if u16::from_be(read::<u16>(sk, off!(sk_dport))?) != DNS_PORT && !addressed_to_dns(call) {
        return Ok(());
    }
    let total = call.ret as u32;
    let mut rec = Rec::new::<DnsBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Dns, &cur, call.nr, call.ret, false);
    // Bounded right before the copy: a bound computed before `fill` was spilled across it as
    // a 32-bit value, which 6.1's verifier does not track ("R2 unbounded memory access").
    let n = if call.ret as u64 > u64::from(DNS_MAX) { DNS_MAX } else { call.ret as u32 };
    let len = rec.push_user(call.args[1], n & (DNS_MAX * 2 - 1));
    let body = rec.body::<DnsBody>();
    body.fd = fd;
    body.dir = if call.nr == NR_WRITE || call.nr == NR_SENDTO { DIR_SEND } else { DIR_RECV };
    body.total = total;
    body.len = len;
    rec.submit();
    Ok(())
}
