//! Per-(auid, syscall) counters aggregated in the kernel for `tracer report`.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SyscountKey {
    pub auid: u32,
    pub nr: u32,
}

/// Set in `SyscountKey::nr` for a 32-bit (ia32) syscall, whose numbers are another table's.
pub const SYSCOUNT_COMPAT: u32 = 1 << 30;

/// Entries of the (auid, nr) count map.
pub const SYSCOUNT_MAX: u32 = 16384;

/// Numbers below this are counted in a per-CPU array when one login UID is filtered.
pub const SYSCOUNT_NR_MAX: u32 = 1024;

/// Index of the kernel's counters in the `STATS` array.
pub const STAT_LOST: u32 = 0;
/// Syscount map full: a (auid, nr) pair could not be counted.
pub const STAT_SYSCOUNT_FULL: u32 = 2;
/// `AGG` full: a record crossed on its own instead of being counted in the kernel.
pub const STAT_AGG_FULL: u32 = 3;
pub const STAT_MAX: u32 = 4;

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscountKey {}
