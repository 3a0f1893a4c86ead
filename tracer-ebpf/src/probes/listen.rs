//! listen(2) exits of traced processes on IPv4/IPv6 sockets: the address and port the job
//! opened to the network (`tracer ci`).

use tracer_common::{
    config::ENABLE_LISTEN,
    connect::{AF_INET, AF_INET6},
    event::EventKind,
    listen::ListenBody,
};

use super::{Syscall, current_if_traced, dns::sock_of_fd};
use crate::{
    kernel::{off, read},
    record::Rec,
};

#[inline(always)]
pub(crate) fn on_exit(call: Syscall) {
    let _ = try_exit(call);
}

#[inline(always)]
fn try_exit(call: Syscall) -> Result<(), i64> {
    let cur = current_if_traced(ENABLE_LISTEN).ok_or(-1i64)?;
    let fd = call.args[0] as i32;
    let sk = sock_of_fd(cur.task, fd)?;
    let family: u16 = read(sk, off!(sk_family))?;
    let mut addr = [0u8; 16];
    if family == AF_INET {
        let a: [u8; 4] = read(sk, off!(sk_rcv_saddr))?;
        addr[..4].copy_from_slice(&a);
    } else if family == AF_INET6 {
        addr = read(sk, off!(sk_v6_rcv_saddr))?;
    } else {
        return Ok(());
    }
    // skc_num is the local port in host order.
    let port: u16 = read(sk, off!(sk_num))?;
    let mut rec = Rec::new::<ListenBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Listen, &cur, call.nr, call.ret, false);
    rec.set_args(call.args);
    let body = rec.body::<ListenBody>();
    body.fd = fd;
    body.family = family;
    body.port = port;
    body.addr = addr;
    rec.submit();
    Ok(())
}
