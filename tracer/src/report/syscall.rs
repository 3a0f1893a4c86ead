//! A counted system call: its number and table, named as audit names it.

use std::{borrow::Cow, collections::BTreeMap};

use tracer_common::syscount::SYSCOUNT_COMPAT;

/// Number and table of a syscall (the kernel counts `nr | SYSCOUNT_COMPAT` for i386).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Sysno {
    pub nr: u32,
    /// A 32-bit call (audit's `arch=i386`, rules `-F arch=b32`).
    pub i386: bool,
}

impl Sysno {
    /// From the kernel's counting key.
    pub(crate) fn from_key(key: u32) -> Self {
        Self { nr: key & !SYSCOUNT_COMPAT, i386: key & SYSCOUNT_COMPAT != 0 }
    }

    /// audit's name for the architecture.
    pub(crate) fn arch(self) -> &'static str {
        if self.i386 { "i386" } else { "x86_64" }
    }

    /// The name audit prints (`ausyscall`, `ausearch -i`), from its own tables; a number
    /// its table lacks as audit shows it, `unknown-syscall(N)`.
    pub(crate) fn name(self) -> Cow<'static, str> {
        let arch = if self.i386 { tracer_rules::Arch::B32 } else { tracer_rules::Arch::B64 };
        match tracer_rules::syscalls::name(arch, self.nr) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("unknown-syscall({})", self.nr)),
        }
    }

    /// The text report's label: the name, and ` (i386)` for a 32-bit call (the two tables
    /// share names for different calls).
    pub(crate) fn label(self) -> String {
        if self.i386 { format!("{} (i386)", self.name()) } else { self.name().into_owned() }
    }
}

/// Syscalls highest count first, ties by label.
pub(crate) fn sorted_syscalls(m: &BTreeMap<Sysno, u64>) -> Vec<(Sysno, String, u64)> {
    let mut v: Vec<_> = m.iter().map(|(&k, &n)| (k, k.label(), n)).collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_names_both_tables() {
        let name = |key| Sysno::from_key(key).name().into_owned();
        assert_eq!(name(17), "pread", "audit's name, not the kernel's pread64");
        assert_eq!(name(15), "rt_sigreturn");
        assert_eq!(name(SYSCOUNT_COMPAT | 119), "sigreturn");
        assert_eq!(name(SYSCOUNT_COMPAT | 173), "rt_sigreturn");
        assert_eq!(name(SYSCOUNT_COMPAT | 11), "execve");
        assert_eq!(name(100_000), "unknown-syscall(100000)");
        assert_eq!(Sysno::from_key(SYSCOUNT_COMPAT | 5).label(), "open (i386)");
        assert_eq!(Sysno::from_key(SYSCOUNT_COMPAT | 5).arch(), "i386");
    }
}
