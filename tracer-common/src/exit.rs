//! A process's end (`sched_process_exit` of the thread-group leader).

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitBody {
    /// `task_struct::exit_code` as wait(2) reports it: status << 8, or the killing signal
    /// (0x80 set when it dumped core).
    pub code: u32,
    /// 0 when `exit_code` could not be read (field missing from this kernel).
    pub known: u32,
}

// SAFETY: #[repr(C)], integer fields only, no padding: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExitBody {}
