//! Syscall tables: audit's names (x86_64 and i386), numbers, and each call's names (PATH
//! items) for the kernel's record.

mod args;
mod table;

use tracer_common::rules::NameSpec;

use super::Arch;

/// Highest number a rule may name plus one (audit's rule bitmap: 64 words of 32 bits).
pub const NR_LIMIT: u32 = 2048;

fn table(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::B64 => &table::X86_64,
        Arch::B32 => &table::I386,
    }
}

/// audit's name for `nr` (`ausyscall`), if the table has one.
pub fn name(arch: Arch, nr: u32) -> Option<&'static str> {
    table(arch).get(nr as usize).copied().filter(|n| !n.is_empty())
}

/// The number of `name` (or a decimal number) in `arch`'s table.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    if let Some(nr) = table(arch).iter().position(|n| *n == name) {
        return u32::try_from(nr).ok();
    }
    // auditctl takes a number where the name is unknown (strtol base 0: 0x.., 0..).
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return crate::value::c_number(name).and_then(|n| u32::try_from(n).ok()).filter(|&n| n < NR_LIMIT);
    }
    None
}

/// Every number `arch`'s table names.
pub fn numbers(arch: Arch) -> impl Iterator<Item = u32> {
    table(arch).iter().enumerate().filter(|(_, n)| !n.is_empty()).filter_map(|(nr, _)| u32::try_from(nr).ok())
}

/// Where the call's names are in its arguments.
pub fn names(arch: Arch, nr: u32) -> [NameSpec; 2] {
    name(arch, nr).map_or([NameSpec::default(); 2], args::names)
}
