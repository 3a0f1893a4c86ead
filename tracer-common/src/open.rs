//! open, openat, openat2, creat: one record at syscall exit, the arguments read from the
//! exit's saved registers.

/// The `dfd` meaning "relative to the working directory" (Linux's value on every arch).
pub const AT_FDCWD: i32 = -100;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenBody {
    pub flags: u32,
    pub mode: u32,
    pub dfd: i32,
    /// The name as passed.
    pub path_len: u16,
    /// Host path of the directory a relative name is resolved against (cwd or dirfd);
    /// 0 when the name is absolute.
    pub base_len: u16,
    /// Host path of the working directory when it is not already the base (`WANT_CWD`).
    pub cwd_len: u16,
    pub _pad: [u8; 6],
}

// SAFETY: #[repr(C)], integers only, padding explicit (`_pad`): every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for OpenBody {}
