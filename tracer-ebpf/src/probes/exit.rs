//! A traced process's end: the thread-group leader at sched_process_exit, with the exit
//! status do_exit stored in `task_struct::exit_code` just before the tracepoint.

use tracer_common::{config::ENABLE_EXIT, event::EventKind, exit::ExitBody};

use super::current_if_traced;
use crate::{
    kernel::{off, read},
    record::Rec,
};

#[inline(always)]
pub(crate) fn on_exit() {
    let _ = try_exit();
}

#[inline(always)]
fn try_exit() -> Result<(), i64> {
    let cur = current_if_traced(ENABLE_EXIT).ok_or(-1i64)?;
    if cur.pid_tgid as u32 != (cur.pid_tgid >> 32) as u32 {
        return Ok(());
    }
    let code = read::<u32>(cur.task, off!(task_exit_code));
    let mut rec = Rec::new::<ExitBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exit, &cur, 0, 0, false);
    let body = rec.body::<ExitBody>();
    body.code = code.unwrap_or(0);
    body.known = u32::from(code.is_ok());
    rec.submit();
    Ok(())
}
