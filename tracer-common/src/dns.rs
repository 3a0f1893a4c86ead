//! `tracer ci`: DNS messages a traced process sends to or reads from a socket whose peer
//! port is 53, copied at the system call's exit; parsed in user space.

/// Bytes of one message carried at most (a classic UDP DNS message).
pub const DNS_MAX: u32 = 512;

pub const DIR_SEND: u32 = 1;
pub const DIR_RECV: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsBody {
    pub fd: i32,
    /// `DIR_SEND` or `DIR_RECV`.
    pub dir: u32,
    /// Bytes the call moved; more than `len` when the message was cut.
    pub total: u32,
    /// Bytes that follow.
    pub len: u32,
}

// SAFETY: #[repr(C)], integer fields only, no padding: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for DnsBody {}
