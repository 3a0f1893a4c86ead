//! connect(2): the peer address and the result.

use crate::protect::InodeKey;

pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectBody {
    pub fd: i32,
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    /// IPv4 in the first 4 bytes, or IPv6.
    pub addr: [u8; 16],
    /// AF_UNIX: sun_path bytes that follow (abstract names start with NUL).
    pub path_len: u16,
    pub _pad: [u8; 6],
    /// AF_UNIX, connected: the (inode, device) of the socket file the peer is bound to, read
    /// from the kernel's socket at the call (what a name the client chose cannot steer
    /// afterwards); zero when unknown.
    pub unix_file: InodeKey,
}

// SAFETY: #[repr(C)], integer fields and an all-integer #[repr(C)] key, padding explicit:
// every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ConnectBody {}
