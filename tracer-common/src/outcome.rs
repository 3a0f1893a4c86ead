//! `tracer ci`: how a traced TCP connect ended, reported at `sock:inet_sock_set_state`
//! (SYN_SENT → ESTABLISHED, or → CLOSE: failed), so a non-blocking connect that returned
//! -EINPROGRESS is followed to its end.

/// A connect in SYN_SENT, keyed by its `struct sock` address (the outcome arrives in
/// softirq context, where the current task is whoever was interrupted).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingConnect {
    pub tgid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeBody {
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    /// 1: the handshake completed; 0: the socket closed first (`Header::ret` is -sk_err).
    pub established: u32,
    /// IPv4 in the first 4 bytes, or IPv6.
    pub addr: [u8; 16],
}

/// Most connects followed at once.
pub const PENDING_MAX: u32 = 8192;

// SAFETY: #[repr(C)], integer fields only, no padding: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for PendingConnect {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for OutcomeBody {}
