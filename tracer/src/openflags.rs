//! open(2) flags by name (`O_WRONLY|O_CREAT|O_TRUNC`), as strace shows them, for the JSON
//! and text sinks. x86_64 (generic) values, as the kernel sees them.

/// Named single bits, in strace's order. O_SYNC and O_TMPFILE are multi-bit and handled first.
const BITS: &[(u32, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];
const O_SYNC: u32 = 0o4010000;
const O_TMPFILE: u32 = 0o20200000;

/// Displays the names of the flags; bits without a name as one hex number.
pub(crate) struct Names(pub u32);

impl std::fmt::Display for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 & 0o3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => "O_ACCMODE",
        })?;
        let mut rest = self.0 & !0o3;
        for (mask, name) in [(O_TMPFILE, "O_TMPFILE"), (O_SYNC, "O_SYNC")] {
            if rest & mask == mask {
                write!(f, "|{name}")?;
                rest &= !mask;
            }
        }
        for &(bit, name) in BITS {
            if rest & bit != 0 {
                write!(f, "|{name}")?;
                rest &= !bit;
            }
        }
        if rest != 0 {
            write!(f, "|{rest:#x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(flags: u32) -> String {
        Names(flags).to_string()
    }

    #[test]
    fn as_strace_names_them() {
        assert_eq!(s(0), "O_RDONLY");
        assert_eq!(s(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(s(0o2000000 | 0o200000), "O_RDONLY|O_DIRECTORY|O_CLOEXEC");
        assert_eq!(s(0o4010002), "O_RDWR|O_SYNC");
        assert_eq!(s(0o20200002), "O_RDWR|O_TMPFILE");
        assert_eq!(s(0o10000 | 1), "O_WRONLY|O_DSYNC");
        assert_eq!(s(0x8000_0000), "O_RDONLY|0x80000000");
    }
}
