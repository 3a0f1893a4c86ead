//! errno names for `-errno` results, from the `syscalls` crate's table (the kernel's
//! asm-generic numbering, which x86_64 uses).

use syscalls::Errno;

/// The kernel's MAX_ERRNO: a return value in -4095..=-1 is an error.
const MAX_ERRNO: i32 = 4095;

/// "ENOENT" for -2; None for success or an unknown number.
pub(crate) fn name(ret: i64) -> Option<&'static str> {
    let n = i32::try_from(ret.checked_neg()?).ok().filter(|n| (1..=MAX_ERRNO).contains(n))?;
    Errno::new(n).name()
}

/// The number for a name ("ENOENT" -> 2), for reading recorded events back.
pub(crate) fn number(name: &str) -> Option<i64> {
    (1..=MAX_ERRNO).find(|&n| Errno::new(n).name() == Some(name)).map(i64::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_numbers() {
        assert_eq!(super::name(-2), Some("ENOENT"));
        assert_eq!(super::name(-13), Some("EACCES"));
        assert_eq!(super::name(-11), Some("EAGAIN"));
        assert_eq!(super::name(-111), Some("ECONNREFUSED"));
        assert_eq!(super::name(-115), Some("EINPROGRESS"));
        assert_eq!(super::name(3), None);
        assert_eq!(super::name(i64::MIN), None);
        assert_eq!(super::name(-5000), None);
        assert_eq!(super::number("ECONNREFUSED"), Some(111));
        assert_eq!(super::number("EBOGUS"), None);
    }
}
