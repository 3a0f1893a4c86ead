//! sshd's own log messages, captured as sshd writes them: syslog datagrams (sendto on the
//! /dev/log socket) and stderr writes (`sshd -D -e`), from processes named sshd,
//! sshd-session or sshd-auth only. The sender pid comes with them, so a message that names
//! no address can be tied to the connection that process serves.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid};
use tracer_common::{
    config::ENABLE_SSHLOG,
    event::EventKind,
    sshlog::{SSHLOG_MAX, SshLogBody, VIA_SENDTO, VIA_WRITE},
};

use super::nr::NR_WRITE;
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

/// "sshd", "sshd-session", "sshd-auth": the comm is NUL-padded to 16 bytes.
#[inline(always)]
fn is_sshd(c: &[u8; 16]) -> bool {
    if &c[..4] != b"sshd" {
        return false;
    }
    c[4] == 0 || (&c[4..13] == b"-session\0") || (&c[4..10] == b"-auth\0")
}

#[inline(always)]
fn capture(fd: u64, buf: u64, len: u64, via: u32, nr: u32) {
    if conf!(enabled) & ENABLE_SSHLOG == 0 {
        return;
    }
    let Ok(comm) = bpf_get_current_comm() else {
        return;
    };
    if !is_sshd(&comm) {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == conf!(tracer_tgid) {
        return;
    }
    let Some(mut rec) = Rec::new::<SshLogBody>() else {
        return;
    };
    let cur = Current { task: current_task(), pid_tgid, uid_gid: bpf_get_current_uid_gid() };
    rec.fill(EventKind::SshLog, &cur, nr, len as i64, false);
    let want = if len > u64::from(SSHLOG_MAX) { SSHLOG_MAX } else { len as u32 };
    let got = rec.push_user(buf, want & (SSHLOG_MAX * 2 - 1));
    let body = rec.body::<SshLogBody>();
    body.fd = fd as i32;
    body.via = via;
    body.total = len as u32;
    body.len = got;
    rec.submit();
}
