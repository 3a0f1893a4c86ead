//! `sock:inet_sock_set_state` (raw tracepoint: sk, oldstate, newstate): a traced task's
//! connect entering SYN_SENT is remembered by its sock; leaving SYN_SENT reports the
//! outcome. The second half runs in softirq context, where it may interrupt a program
//! building a record in this CPU's scratch area: its record is built on the stack.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, generated::bpf_ktime_get_boot_ns},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use tracer_common::{
    config::ENABLE_CONNECT_OUTCOME,
    connect::{AF_INET, AF_INET6},
    event::{EventKind, F_AUID_UNKNOWN, F_CRED_UNKNOWN, F_MNTNS_UNKNOWN, F_PPID_UNKNOWN, HEADER_SIZE, Header},
    outcome::{OutcomeBody, PendingConnect},
    syscount::STAT_LOST,
};

use super::current_if_traced;
use crate::{
    kernel::{Kptr, off, read},
    maps::{EVENTS, PENDING_CONNECTS, stat_inc},
};

const TCP_ESTABLISHED: i64 = 1;
const TCP_SYN_SENT: i64 = 2;
const TCP_CLOSE: i64 = 7;

#[repr(C)]
struct OutcomeRec {
    h: Header,
    b: OutcomeBody,
}

#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub(crate) fn conn_state(ctx: RawTracePointContext) -> i32 {
    let sk: Kptr = ctx.arg(0);
    let old: i64 = ctx.arg(1);
    let new: i64 = ctx.arg(2);
    // The states are ints: only the low 32 bits of the argument slots are theirs.
    let _ = try_state(sk, i64::from(old as i32), i64::from(new as i32));
    0
}

#[inline(always)]
fn try_state(sk: Kptr, old: i64, new: i64) -> Result<(), i64> {
    let key = sk as u64;
    if old == TCP_CLOSE && new == TCP_SYN_SENT {
        // connect(2) itself, in the connecting task.
        let cur = current_if_traced(ENABLE_CONNECT_OUTCOME).ok_or(-1i64)?;
        let p = PendingConnect {
            tgid: (cur.pid_tgid >> 32) as u32,
            tid: cur.pid_tgid as u32,
            uid: cur.uid_gid as u32,
            gid: (cur.uid_gid >> 32) as u32,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        return PENDING_CONNECTS.insert(key, p, 0).map_err(i64::from);
    }
    if old != TCP_SYN_SENT {
        return Ok(());
    }
    // SAFETY: a map lookup; the value is copied out before the entry is removed.
    let p = unsafe { PENDING_CONNECTS.get(key) }.copied().ok_or(-1i64)?;
    let _ = PENDING_CONNECTS.remove(key);
    let established = new == TCP_ESTABLISHED;
    let err: i32 = if established { 0 } else { read(sk, off!(sk_err)).unwrap_or(0) };
    let family: u16 = read(sk, off!(sk_family))?;
    let mut addr = [0u8; 16];
    if family == AF_INET {
        let a: [u8; 4] = read(sk, off!(sk_daddr))?;
        addr[..4].copy_from_slice(&a);
    } else if family == AF_INET6 {
        addr = read(sk, off!(sk_v6_daddr))?;
    } else {
        return Ok(());
    }
    let port = u16::from_be(read::<u16>(sk, off!(sk_dport))?);
    let rec = OutcomeRec {
        h: Header {
            kind: EventKind::ConnectOutcome as u32,
            flags: F_PPID_UNKNOWN | F_MNTNS_UNKNOWN | F_CRED_UNKNOWN | F_AUID_UNKNOWN,
            // SAFETY: a helper without arguments.
            time_ns: unsafe { bpf_ktime_get_boot_ns() },
            ret: -i64::from(err),
            tgid: p.tgid,
            tid: p.tid,
            uid: p.uid,
            gid: p.gid,
            euid: u32::MAX,
            egid: u32::MAX,
            suid: u32::MAX,
            sgid: u32::MAX,
            fsuid: u32::MAX,
            fsgid: u32::MAX,
            auid: u32::MAX,
            ses: u32::MAX,
            comm: p.comm,
            size: (HEADER_SIZE + size_of::<OutcomeBody>()) as u32,
            ..Header::default()
        },
        b: OutcomeBody { family, port, established: u32::from(established), addr },
    };
    if EVENTS.output::<OutcomeRec>(&rec, 0).is_err() {
        stat_inc(STAT_LOST);
    }
    Ok(())
}
