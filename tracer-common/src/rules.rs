//! auditctl rules compiled for the kernel (`tracer trace --rules`). `tracer-rules` compiles a
//! rule file into these tables; `tracer-ebpf/src/probes/rules.rs` evaluates them at syscall
//! exit, before any record is built.
//!
//! The kernel decides what it can see cheaply (ids, creds, pid/ppid, exit, a0..a3, perm, exe);
//! conditions on names (`path=`, `dir=`, `obj_uid`, `obj_gid`, and `-C` comparisons naming an
//! object) are decided by user space on the record's resolved names. A record therefore
//! carries the *candidate* rules (`RuleBits` trailer, `F_RULES`): every rule, in order, whose
//! kernel conditions held, up to and including the first one that needs nothing from user
//! space. User space takes the first candidate whose remaining conditions hold: its action
//! decides (never → dropped), its keys tag the event. A call with no candidate, or whose first
//! candidate is a decided `never`, costs the map lookups only.

/// Rules the kernel tables hold (the bit width of `RuleBits`).
pub const RULES_MAX: usize = 256;
pub const RULE_WORDS: usize = RULES_MAX / 64;
/// Kernel-evaluated conditions per rule (auditctl allows 64 `-F`; longer rules are refused).
pub const RULE_FIELDS_MAX: usize = 16;
/// Entries of the RULE_NRS map: every x86_64 and i386 number plus the two `NR_OTHER` keys.
pub const RULE_NRS_MAX: u32 = 1024;
/// `NrKey::nr` of the entry used for numbers that have no entry of their own (only rules
/// naming every syscall, `-S all` or none, are in it).
pub const NR_OTHER: u32 = u32::MAX;

/// A set of rule indexes; bit `i % 64` of word `i / 64` is rule `i` (file order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleBits {
    pub words: [u64; RULE_WORDS],
}

/// RULE_NRS key: which syscall, in which ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NrKey {
    /// 0: x86_64 (`arch=b64`), 1: i386 (`arch=b32`, a 32-bit call).
    pub compat: u32,
    pub nr: u32,
}

/// `NameSpec::kind`: how one name of a syscall is found in its arguments.
pub const NAME_NONE: u8 = 0;
/// A user string in `arg`, relative to the working directory.
pub const NAME_PATH: u8 = 1;
/// A user string in `arg`, relative to the directory fd in `dirfd_arg` (AT_FDCWD: the cwd).
pub const NAME_PATH_AT: u8 = 2;
/// An open file descriptor in `arg` (fchmod, fchown, fsetxattr, ftruncate, finit_module…).
pub const NAME_FD: u8 = 3;

/// One name (audit's PATH item) of a syscall; `tracer-rules` knows each syscall's shape.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameSpec {
    pub kind: u8,
    /// Argument index (0..=3, or 4 for the fifth register where a name sits there).
    pub arg: u8,
    pub dirfd_arg: u8,
    pub _pad: u8,
}

/// `RuleNr::perm_from`: how the call's audit permission class is found.
/// The static `perm` mask (audit's syscall classes: write, read, attribute change; exec for execve).
pub const PERM_STATIC: u8 = 0;
/// ACC_MODE of the open flags in argument `perm_arg` (open, openat, open_by_handle_at).
pub const PERM_OPEN_FLAGS: u8 = 1;
/// ACC_MODE of `struct open_how.flags` pointed to by argument `perm_arg` (openat2).
pub const PERM_OPEN_HOW: u8 = 2;
/// i386 socketcall: write when argument 0 is SYS_BIND (2).
pub const PERM_SOCKETCALL: u8 = 3;

/// audit's permission bits (`-p`, `perm=`): the values auditctl uses.
pub const PERM_EXEC: u32 = 1;
pub const PERM_WRITE: u32 = 2;
pub const PERM_READ: u32 = 4;
pub const PERM_ATTR: u32 = 8;

/// RULE_NRS value: the rules that may match this syscall, and what the kernel needs to know
/// about the call to evaluate them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleNr {
    pub rules: RuleBits,
    /// The call's names (audit PATH items the rules' name conditions look at and the record
    /// carries), in audit's order.
    pub names: [NameSpec; 2],
    pub perm_from: u8,
    pub perm_arg: u8,
    pub _pad: [u8; 2],
    /// `PERM_*` bits this call satisfies when `perm_from` is `PERM_STATIC`.
    pub perm: u32,
}

/// `KField::code`: what a kernel condition compares. Values are audit's field semantics.
pub const KF_AUID: u16 = 1;
pub const KF_UID: u16 = 2;
pub const KF_EUID: u16 = 3;
pub const KF_SUID: u16 = 4;
pub const KF_FSUID: u16 = 5;
pub const KF_GID: u16 = 6;
pub const KF_EGID: u16 = 7;
pub const KF_SGID: u16 = 8;
pub const KF_FSGID: u16 = 9;
pub const KF_PID: u16 = 10;
pub const KF_PPID: u16 = 11;
pub const KF_SESSIONID: u16 = 12;
pub const KF_LOGINUID_SET: u16 = 13;
/// The return value (as audit: the low 32 bits compared unsigned, `-EACCES` as 0xfffffff3).
pub const KF_EXIT: u16 = 14;
/// 1 when the call succeeded (the return is not in -4095..=-1), else 0.
pub const KF_SUCCESS: u16 = 15;
pub const KF_A0: u16 = 16;
pub const KF_A1: u16 = 17;
pub const KF_A2: u16 = 18;
pub const KF_A3: u16 = 19;
/// `value` is a `PERM_*` mask: true when the call's class intersects it (audit_match_perm).
pub const KF_PERM: u16 = 20;
/// The running executable is `(value: inode, value2: device as the kernel's s_dev)`; op
/// Equal or NotEqual only.
pub const KF_EXE: u16 = 21;
/// A `-C` comparison between two task fields: `value` = left code, `value2` = right code
/// (both among the uid/gid codes above); op Equal or NotEqual only.
pub const KF_CMP: u16 = 22;
/// The personality's arch, for rules whose arch condition is not the map key (`arch!=b64`…):
/// `value` is audit's AUDIT_ARCH_* value of the call's ABI.
pub const KF_ARCH: u16 = 23;

/// `KField::op`: audit's operators.
pub const OP_EQ: u16 = 1;
pub const OP_NE: u16 = 2;
pub const OP_LT: u16 = 3;
pub const OP_GT: u16 = 4;
pub const OP_LE: u16 = 5;
pub const OP_GE: u16 = 6;
/// `&`: (left & value) != 0.
pub const OP_BITMASK: u16 = 7;
/// `&=`: (left & value) == value.
pub const OP_BITTEST: u16 = 8;

/// One kernel condition. Integer comparisons are on the low 32 bits, unsigned, as audit's
/// `audit_comparator` (values are u32 in audit's rule format).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KField {
    pub code: u16,
    pub op: u16,
    pub value2: u32,
    pub value: u64,
}

/// `KRule::action`.
pub const ACTION_NEVER: u32 = 0;
pub const ACTION_ALWAYS: u32 = 1;

/// `KRule::flags`: the rule also has conditions only user space decides (names, objects).
pub const KRULE_USER: u32 = 1 << 0;
/// `KRule::flags`: a `path=` rule (a watch on a file). The kernel's audit keeps these on its
/// inode lists and tries them per name of the call after the exit list, among the rules
/// before the exit list's match (audit's rule priorities): overall the first rule in order
/// still wins, so the kernel side needs no candidate after the first decided rule; user
/// space (`tracer_rules::Compiled::decide`) orders watches by name.
pub const KRULE_WATCH: u32 = 1 << 1;

/// RULES array value, index = rule index: a rule's kernel conditions, all of which must hold.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KRule {
    pub action: u32,
    pub flags: u32,
    pub nfields: u32,
    pub _pad: u32,
    pub fields: [KField; RULE_FIELDS_MAX],
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is a valid
// value and there are no implicit padding bytes.
#[cfg(feature = "user")]
unsafe impl aya::Pod for RuleBits {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for NrKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for RuleNr {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for KRule {}
