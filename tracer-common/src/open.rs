//! open, openat, openat2, creat: arguments stashed at entry, record emitted at exit.

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

#[cfg(feature = "user")]
unsafe impl aya::Pod for OpenBody {}
