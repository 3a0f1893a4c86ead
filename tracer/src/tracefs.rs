//! tracefs: mounted when missing (a fresh machine has none), and tracepoint `format` files
//! read so field offsets that changed between kernels (sched_process_fork's comm became a
//! __data_loc in 6.x) come from the running kernel.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub(crate) enum TracefsError {
    #[error("cannot mount tracefs on {path}: {source}")]
    Mount { path: String, source: std::io::Error },
    #[error("tracepoint {0} not found in tracefs (kernel lacks it?)")]
    MissingTracepoint(String),
    #[error("tracepoint {tp} has no field {field}")]
    MissingField { tp: String, field: String },
}

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Returns the tracefs root, mounting it on /sys/kernel/tracing when no mount exists.
pub(crate) fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    for c in CANDIDATES {
        if Path::new(c).join("events").is_dir() {
            return Ok(PathBuf::from(c));
        }
    }
    let target = CANDIDATES[0];
    let src = CString::new("tracefs").unwrap();
    let dst = CString::new(target).unwrap();
    // SAFETY: src and dst are NUL-terminated CStrings alive for the call; no mount data is passed.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), src.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(TracefsError::Mount { path: target.into(), source: std::io::Error::last_os_error() });
    }
    Ok(PathBuf::from(target))
}

pub(crate) fn exists(root: &Path, category: &str, name: &str) -> bool {
    root.join("events").join(category).join(name).is_dir()
}

/// Offset of `field` in tracepoint `category/name`, from its `format` file.
pub(crate) fn field_offset(root: &Path, category: &str, name: &str, field: &str) -> Result<u32, TracefsError> {
    let tp = format!("{category}/{name}");
    let text = std::fs::read_to_string(root.join("events").join(category).join(name).join("format"))
        .map_err(|_| TracefsError::MissingTracepoint(tp.clone()))?;
    parse_field_offset(&text, field).ok_or(TracefsError::MissingField { tp, field: field.into() })
}

/// `field:pid_t child_pid;\toffset:20;\tsize:4;...` -> 20 for "child_pid".
pub(crate) fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let name = decl.rsplit(|c: char| c.is_whitespace() || c == '*').next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        rest.trim().strip_prefix("offset:")?.split(';').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORK_6_18: &str = "name: sched_process_fork\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
    const FORK_6_1: &str = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";

    #[test]
    fn parses_both_fork_layouts() {
        assert_eq!(parse_field_offset(FORK_6_18, "child_pid"), Some(20));
        assert_eq!(parse_field_offset(FORK_6_18, "parent_comm"), Some(8));
        assert_eq!(parse_field_offset(FORK_6_1, "child_pid"), Some(44));
        assert_eq!(parse_field_offset(FORK_6_1, "child_comm"), Some(28));
        assert_eq!(parse_field_offset(FORK_6_1, "nope"), None);
    }
}
