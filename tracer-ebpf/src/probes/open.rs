//! open, openat, openat2, creat, reported at exit with the result. Relative names carry the
//! host path of their base directory (cwd or dirfd).

use tracer_common::{
    config::{ENABLE_OPEN, PROTECT_ONLY, WANT_CWD},
    event::{EventKind, F_BASE_UNKNOWN},
    open::{AT_FDCWD as AT_FDCWD_I32, OpenBody},
};

use super::{Syscall, current_if, nr::*, protect};
use crate::{
    kernel::conf,
    record::{Rec, entry_only},
};

const AT_FDCWD: i64 = AT_FDCWD_I32 as i64;
/// creat(2) is open(O_CREAT | O_WRONLY | O_TRUNC).
const CREAT_FLAGS: u64 = 0o100 | 0o1 | 0o1000;

#[inline(always)]
pub(crate) fn on_exit(call: Syscall) {
    let _ = try_exit(call);
}

#[inline(always)]
fn try_exit(call: Syscall) -> Result<(), i64> {
    let cur = current_if(ENABLE_OPEN, call.rules).ok_or(-1i64)?;
    let a = call.args;
    let (dfd, name, flags, mode) = match call.nr {
        NR_OPEN => (AT_FDCWD, a[0], a[1], a[2]),
        NR_CREAT => (AT_FDCWD, a[0], CREAT_FLAGS, a[1]),
        NR_OPENAT => (i64::from(a[0] as i32), a[1], a[2], a[3]),
        _ => {
            // openat2(dfd, name, struct open_how { u64 flags; u64 mode; u64 resolve; }, size)
            let how = a[2];
            // SAFETY: bpf_probe_read_user copies from any user address (a bad one is an error, mapped to 0).
            let flags = unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const u64) }.unwrap_or(0);
            // SAFETY: as above.
            let mode = unsafe { aya_ebpf::helpers::bpf_probe_read_user((how + 8) as *const u64) }.unwrap_or(0);
            (i64::from(a[0] as i32), a[1], flags, mode)
        }
    };
    if conf!(enabled) & PROTECT_ONLY != 0 && !protect::key_read(cur.task, call.ret, flags) {
        return Ok(());
    }
    let mut rec = Rec::new::<OpenBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Open, &cur, call.nr, call.ret, false);
    rec.set_args(call.args);
    let at = rec.off();
    let path_len = rec.push_user_str(name);
    let mut base_len = 0;
    if path_len == 0 || rec.byte_at(at) != b'/' {
        let base = if dfd == AT_FDCWD { rec.push_cwd(cur.task) } else { rec.push_fd_path(cur.task, dfd as i32) };
        match base {
            Ok(len) => base_len = len,
            Err(_) => rec.header().flags |= F_BASE_UNKNOWN,
        }
    }
    // audit's CWD record: the working directory, unless it already is the base.
    let mut cwd_len = 0;
    if conf!(enabled) & WANT_CWD != 0 && !(base_len > 0 && dfd == AT_FDCWD) {
        cwd_len = rec.push_cwd(cur.task).unwrap_or(0);
    }
    let body = rec.body::<OpenBody>();
    body.cwd_len = cwd_len;
    if !entry_only() {
        body.flags = flags as u32;
        body.mode = mode as u32;
        body.dfd = dfd as i32;
    }
    body.path_len = path_len;
    body.base_len = base_len;
    if call.rules {
        rec.push_rules();
    }
    rec.submit();
    Ok(())
}
