//! `report --input FILE`: a recorded file in either format the tracer writes, told apart by
//! its first bytes: audit.log records (`type=`; `trace --format audit`, the daemon's default)
//! or JSON lines.

use std::{io::BufRead, path::Path};

use super::{
    Reports, audit_input,
    input::{self, InputError, InputFilters, InputStats},
};

pub(crate) fn read_file(
    path: &Path,
    filters: &mut InputFilters,
    reports: &mut Reports,
) -> Result<InputStats, InputError> {
    let name = path.display().to_string();
    let io = |source| InputError::Io { path: name.clone(), source };
    let mut r = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).map_err(io)?);
    if r.fill_buf().map_err(io)?.starts_with(b"type=") {
        audit_input::read(r, &name, filters, reports)
    } else {
        input::read(r, &name, filters, reports)
    }
}
