//! Per-(auid, syscall) counters aggregated in the kernel for `tracer report`.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SyscountKey {
    pub auid: u32,
    pub nr: u32,
}

/// Index of the kernel's counters in the `STATS` array.
pub const STAT_LOST: u32 = 0;
/// Entry-argument stash full: the syscall's record could not be produced.
pub const STAT_STASH_FULL: u32 = 1;
/// Syscount map full: a (auid, nr) pair could not be counted.
pub const STAT_SYSCOUNT_FULL: u32 = 2;
pub const STAT_MAX: u32 = 4;

#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscountKey {}
