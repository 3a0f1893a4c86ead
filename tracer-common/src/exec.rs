//! exec: successful ones from `sched_process_exec` (argv read from the new mm), failed ones
//! at syscall exit, raw `sys_exit` or fexit (filename and argv from the caller's memory).

/// argv bytes carried at most; longer command lines set `F_ARGV_TRUNCATED`.
pub const ARGV_MAX: usize = 65535;
/// Arguments walked for a failed exec (argv pointers read one by one).
pub const FAILED_ARGS_MAX: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecBody {
    /// NUL-separated arguments, as in /proc/PID/cmdline.
    pub argv_len: u32,
    pub filename_len: u16,
    pub cwd_len: u16,
    /// The real argument count (more than argv holds when it was cut), if `argc_known`.
    pub argc: u32,
    pub argc_known: u32,
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExecBody {}
