//! sshd's own log messages, captured as sshd writes them: syslog datagrams (sendto on the
//! /dev/log socket) and stderr writes (`sshd -D -e`), from trusted sshd processes only
//! (`sshpeer::trusted`: vetted executable, euid 0; the process name plays no part). Each
//! carries the peer of the connection socket the process holds, so the guard never takes
//! an address from the text.

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid};
use tracer_common::{
    config::ENABLE_SSHLOG,
    event::EventKind,
    sshlog::{SSHLOG_MAX, SshLogBody, VIA_SENDTO, VIA_WRITE},
};

use super::{nr::NR_WRITE, sshpeer};
use crate::{
    kernel::{Current, conf, current_task},
    record::Rec,
};

const STDERR: u64 = 2;

/// write(2) to fd 2 (`sshd -e`) or sendto(2) (syslog datagrams), at entry: the bytes are
/// in the caller's buffer.
#[inline(always)]
pub(crate) fn on_enter(nr: u32, args: [u64; 4]) {
    let [fd, buf, len, _] = args;
    if nr == NR_WRITE && fd != STDERR {
        return;
    }
    capture(fd, buf, len, if nr == NR_WRITE { VIA_WRITE } else { VIA_SENDTO }, nr);
}

#[inline(always)]
fn capture(fd: u64, buf: u64, len: u64, via: u32, nr: u32) {
    if conf!(enabled) & ENABLE_SSHLOG == 0 {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == conf!(tracer_tgid) {
        return;
    }
    let task = current_task();
    if !sshpeer::trusted(task) {
        return;
    }
    let peer = sshpeer::peer_of(task);
    let Some(mut rec) = Rec::new::<SshLogBody>() else {
        return;
    };
    let cur = Current { task, pid_tgid, uid_gid: bpf_get_current_uid_gid() };
    rec.fill(EventKind::SshLog, &cur, nr, len as i64, false);
    let want = if len > u64::from(SSHLOG_MAX) { SSHLOG_MAX } else { len as u32 };
    let got = rec.push_user(buf, want & (SSHLOG_MAX * 2 - 1));
    let body = rec.body::<SshLogBody>();
    body.fd = fd as i32;
    body.via = via;
    body.total = len as u32;
    body.len = got;
    body.peer_status = peer.status;
    body.peer_family = peer.family;
    body.peer_port = peer.port;
    let a = [peer.addr[0].to_ne_bytes(), peer.addr[1].to_ne_bytes()];
    body.peer_addr = [
        a[0][0], a[0][1], a[0][2], a[0][3], a[0][4], a[0][5], a[0][6], a[0][7], a[1][0], a[1][1], a[1][2], a[1][3],
        a[1][4], a[1][5], a[1][6], a[1][7],
    ];
    rec.submit();
}
