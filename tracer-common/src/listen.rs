//! `tracer ci`: a traced process made a TCP socket listen (listen(2) succeeded).

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenBody {
    pub fd: i32,
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    /// The bound address: IPv4 in the first 4 bytes, or IPv6.
    pub addr: [u8; 16],
}

// SAFETY: #[repr(C)], integer fields only, no padding: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ListenBody {}
