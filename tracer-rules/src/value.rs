//! Field values as auditctl takes them: C numbers (`0x..`, octal `0..`, negative), `unset`,
//! errno names, user and group names (getpwnam/getgrnam, as auditctl).

use std::ffi::CString;

/// `strtol(s, NULL, 0)` of the whole string: `-`, `0x` hex, leading `0` octal, decimal.
pub(crate) fn c_number(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        u64::from_str_radix(&body[1..], 8).ok()?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<u64>().ok()?
    };
    let v = i64::try_from(v).ok()?;
    Some(if neg { -v } else { v })
}

/// A number as audit's 32-bit rule value: `-1` is 0xffffffff; out of range is an error.
pub(crate) fn u32_value(s: &str) -> Result<u32, String> {
    let n = c_number(s).ok_or_else(|| format!("{s:?} is not a number"))?;
    if let Ok(v) = u32::try_from(n) {
        Ok(v)
    } else if let Ok(v) = i32::try_from(n) {
        Ok(v.cast_unsigned())
    } else {
        Err(format!("{s} does not fit audit's 32-bit rule values"))
    }
}

fn starts_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_digit) || (b.len() >= 2 && b[0] == b'-' && b[1].is_ascii_digit())
}

/// uid-type fields (auid, uid, euid, suid, fsuid, obj_uid): a number, `unset`, or a user name.
pub(crate) fn uid(s: &str) -> Result<u32, String> {
    if starts_number(s) {
        u32_value(s)
    } else if s == "unset" {
        Ok(u32::MAX)
    } else {
        lookup(s, true).ok_or_else(|| format!("unknown user: {s}"))
    }
}

/// gid-type fields: a number or a group name (auditctl takes no `unset` or negative here).
pub(crate) fn gid(s: &str) -> Result<u32, String> {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        u32_value(s)
    } else {
        lookup(s, false).ok_or_else(|| format!("unknown group: {s}"))
    }
}

/// `exit=`: a number or an errno name (`-EACCES`, `EPERM`).
pub(crate) fn exit(s: &str) -> Result<u32, String> {
    if starts_number(s) {
        return u32_value(s);
    }
    let (neg, name) = s.strip_prefix('-').map_or((false, s), |n| (true, n));
    let e = errno_number(name).ok_or_else(|| format!("unknown errno name: {name}"))?;
    Ok(if neg { (-e).cast_unsigned() } else { e.cast_unsigned() })
}

/// `a0..a3`, `sessionid`: a number (negative allowed); `unset` for sessionid.
pub(crate) fn signed(s: &str, unset: bool) -> Result<u32, String> {
    if starts_number(s) {
        u32_value(s)
    } else if unset && s == "unset" {
        Ok(u32::MAX)
    } else {
        Err(format!("{s:?} is not a number"))
    }
}

/// Other numeric fields (pid, ppid, success, loginuid_set): must start with a digit.
pub(crate) fn unsigned(s: &str) -> Result<u32, String> {
    if s.starts_with(|c: char| c.is_ascii_digit()) { u32_value(s) } else { Err(format!("{s:?} is not a number")) }
}

fn lookup(name: &str, user: bool) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    if user {
        // SAFETY: an all-zero passwd is a valid out-parameter for getpwnam_r.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf's length is passed with it.
        let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &raw mut pw, buf.as_mut_ptr().cast(), buf.len(), &raw mut res) };
        (rc == 0 && !res.is_null()).then_some(pw.pw_uid)
    } else {
        // SAFETY: an all-zero group is a valid out-parameter for getgrnam_r.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe { libc::getgrnam_r(c.as_ptr(), &raw mut gr, buf.as_mut_ptr().cast(), buf.len(), &raw mut res) };
        (rc == 0 && !res.is_null()).then_some(gr.gr_gid)
    }
}

/// Linux errno names, index = number - 1 (audit's errtab; "" where Linux has only an alias).
const ERRNO: [&str; 133] = [
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
    "EHWPOISON",
];

pub(crate) fn errno_number(name: &str) -> Option<i32> {
    let alias = match name {
        "EWOULDBLOCK" => Some(11),
        "EDEADLOCK" => Some(35),
        "ENOTSUP" => Some(95),
        _ => None,
    };
    alias.or_else(|| ERRNO.iter().position(|n| !n.is_empty() && *n == name).and_then(|i| i32::try_from(i + 1).ok()))
}

pub(crate) fn errno_name(e: u32) -> Option<&'static str> {
    ERRNO.get((e as usize).wrapping_sub(1)).copied().filter(|n| !n.is_empty())
}
