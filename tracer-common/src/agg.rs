//! `tracer report`'s aggregation in the kernel: a record whose report entry was seen before
//! only increments a counter (`AGG`, an atomic add), so a repeated open, exec or connect costs a
//! hash update, not a record. The first record of each entry crosses with `F_AGG`; user
//! space recomputes its key from the bytes it received and adds the counter at the end.

/// `AGG` map key: the report entry a record stands for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AggKey {
    pub auid: u32,
    /// `EventKind` as u32.
    pub kind: u32,
    /// 1 when the call failed (ret < 0): the report tallies failures apart.
    pub failed: u32,
    pub _pad: u32,
    /// `hash` of the record after its header (the body and every string).
    pub hash: u64,
}

/// Distinct entries the kernel counts; past it records cross one by one (`STAT_AGG_FULL`).
pub const AGG_MAX: u32 = 1 << 16;

pub const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// One 8-byte little-endian word into the hash (the kernel and user space must agree).
#[inline(always)]
pub const fn mix(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// The hash of `bytes` as the kernel computes it: the length, then 8-byte little-endian
/// words, the last one zero-padded. Not cryptographic: only the tracer's own records are
/// hashed, and a collision (odds ~2^-64 per pair) would merge two entries' counts.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = mix(HASH_SEED, bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(w));
    }
    h
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggKey {}
