//! Reads a file written by `tracer trace --format json` back into a report (`recorded.rs`
//! picks this or `audit_input.rs`).
//!
//! Lines are read and aggregated one at a time (memory bounded by the distinct entries,
//! not the file). Strings come back byte-exact through `JsonBytes` (it reverses the
//! `\udcXX` escapes). Every line is checked: a malformed one is an error naming the file
//! and line, and the caller prints no report at all rather than a partial one.
//! Such a file holds no syscall counts and no lost-event count: the report says so.

use std::{collections::HashSet, io::BufRead, net::IpAddr};

use serde::Deserialize;
use thiserror::Error;

use super::{Activity, Reports};
use crate::{
    bytes::JsonBytes,
    errno,
    event::{AUID_UNSET, Id, Peer},
    timefmt::parse_rfc3339,
};

#[derive(Debug, Error)]
pub(crate) enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {msg}")]
    Malformed { path: String, line: u64, msg: String },
}

/// The user-space counterparts of the kernel filters of a live run.
#[derive(Debug, Default)]
pub(crate) struct InputFilters {
    pub uid: Option<u32>,
    /// Followed through `ppid` as the file goes, like the kernel follows forks.
    pub pids: HashSet<u32>,
    /// Any of these command names (empty: all).
    pub comms: Vec<Vec<u8>>,
}

/// The fields of a `trace --format json` line the report needs; others are ignored.
#[derive(Deserialize)]
struct Line {
    event: String,
    time: String,
    pid: u32,
    ppid: Option<u32>,
    uid: u32,
    /// A number, "unset", or null (unknown); required.
    auid: serde_json::Value,
    comm: JsonBytes,
    ret: i64,
    error: Option<String>,
    argv: Option<Vec<JsonBytes>>,
    filename: Option<JsonBytes>,
    path: Option<JsonBytes>,
    /// Present when the process was chrooted: the report lists host paths.
    host_path: Option<JsonBytes>,
    /// Host path of the process root; absent in files from before it existed: "/".
    root: Option<JsonBytes>,
    family: Option<String>,
    address: Option<String>,
    port: Option<u16>,
}

/// How many lines were read and how many had an event kind this version does not report.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct InputStats {
    pub lines: u64,
    pub unknown_kinds: u64,
}

pub(crate) fn read(
    mut r: impl BufRead,
    name: &str,
    filters: &mut InputFilters,
    reports: &mut Reports,
) -> Result<InputStats, InputError> {
    let mut stats = InputStats::default();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|source| InputError::Io { path: name.to_string(), source })?;
        if n == 0 {
            return Ok(stats);
        }
        stats.lines += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |msg: String| InputError::Malformed { path: name.to_string(), line: stats.lines, msg };
        let l: Line = serde_json::from_slice(line).map_err(|e| {
            // serde_json's "at line 1 column N" would contradict our line number.
            let msg = e.to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m);
            bad(format!("not a `tracer trace --format json` event: {msg} (column {})", e.column()))
        })?;
        if !add_line(l, filters, reports).map_err(bad)? {
            stats.unknown_kinds += 1;
        }
    }
}

/// Checks one line and adds it to the report (when it passes the filters); false for an
/// event kind the report does not cover.
fn add_line(mut l: Line, f: &mut InputFilters, reports: &mut Reports) -> Result<bool, String> {
    parse_rfc3339(&l.time).ok_or_else(|| format!("bad time {:?}", l.time))?;
    let auid = match &l.auid {
        serde_json::Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(AUID_UNSET) => Id::Unset,
            Some(n) => Id::Set(n),
            None => return Err(format!("bad auid {n}")),
        },
        serde_json::Value::String(s) if s == "unset" => Id::Unset,
        serde_json::Value::Null => Id::Unknown,
        other => return Err(format!("bad auid {other}")),
    };
    // The error name and ret must agree: a line edited by hand or cut is caught here.
    match (&l.error, l.ret < 0) {
        (None, false) => {}
        (Some(e), true) => {
            let n = errno::number(e).or_else(|| e.strip_prefix('E')?.parse().ok());
            if n != Some(-l.ret) {
                return Err(format!("error {e:?} does not match ret {}", l.ret));
            }
        }
        (e, _) => return Err(format!("error {e:?} does not match ret {}", l.ret)),
    }
    let missing = |field: &str| format!("{} event without \"{field}\"", l.event);
    let peer: Peer;
    let argv: Vec<Vec<u8>>;
    let act = match l.event.as_str() {
        "exec" => {
            // Moved out, not copied: JsonBytes owns the Vec.
            argv = l.argv.take().ok_or_else(|| missing("argv"))?.into_iter().map(|a| a.0).collect();
            let root = l.root.as_ref().map_or(&b"/"[..], |r| r.0.as_slice());
            Activity::Exec { argv: &argv, filename: &l.filename.as_ref().ok_or_else(|| missing("filename"))?.0, root }
        }
        "open" => {
            let p = l.host_path.as_ref().or(l.path.as_ref()).ok_or_else(|| missing("path"))?;
            Activity::Open { path: &p.0 }
        }
        "connect" => {
            peer = match l.family.as_deref().ok_or_else(|| missing("family"))? {
                fam @ ("inet" | "inet6") => {
                    let a = l.address.as_deref().ok_or_else(|| missing("address"))?;
                    let address: IpAddr = a.parse().map_err(|_| format!("bad address {a:?}"))?;
                    if address.is_ipv4() != (fam == "inet") {
                        return Err(format!("address {a} is not {fam}"));
                    }
                    Peer::Inet { address, port: l.port.ok_or_else(|| missing("port"))? }
                }
                "unix" => Peer::Unix { path: l.path.as_ref().ok_or_else(|| missing("path"))?.0.clone() },
                other => return Err(format!("unknown family {other:?}")),
            };
            Activity::Connect { peer: &peer }
        }
        _ => return Ok(false),
    };
    if passes(f, l.pid, l.ppid, l.uid, &l.comm.0) {
        reports.add(auid, act, l.ret < 0);
    }
    Ok(true)
}

/// The filters of a live run, applied to a recorded event (`--pid` follows ppid).
pub(super) fn passes(f: &mut InputFilters, pid: u32, ppid: Option<u32>, uid: u32, comm: &[u8]) -> bool {
    if !f.pids.is_empty() {
        if !f.pids.contains(&pid) && !ppid.is_some_and(|p| f.pids.contains(&p)) {
            return false;
        }
        f.pids.insert(pid);
    }
    f.uid.is_none_or(|u| u == uid) && (f.comms.is_empty() || f.comms.iter().any(|c| c == comm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str, only: Option<Id>) -> Result<Reports, InputError> {
        let mut r = Reports::new(only, false);
        read(text.as_bytes(), "rec.json", &mut InputFilters::default(), &mut r)?;
        Ok(r)
    }

    const EXEC: &str = r#"{"event":"exec","time":"2026-11-24T13:22:29.000000001Z","pid":10,"tid":10,"ppid":1,"uid":7005,"gid":7005,"euid":7005,"egid":7005,"auid":7005,"ses":3,"comm":"true","exe":"/usr/bin/true","mntns":1,"chrooted":false,"root":"/","syscall":59,"ret":0,"error":null,"filename":"/bin/true","cwd":"/","argv":["/bin/true","a\udcff"],"argv_truncated":false}"#;
    const OPEN_FAIL: &str = r#"{"event":"open","time":"2026-11-24T13:22:29Z","pid":10,"tid":10,"ppid":1,"uid":7005,"auid":"unset","ses":"unset","comm":"cat","ret":-13,"error":"EACCES","path":"/etc/shadow","name":"/etc/shadow","flags":0,"mode":0}"#;
    const CONNECT: &str = r#"{"event":"connect","time":"2026-11-24T13:22:29Z","pid":10,"tid":10,"ppid":1,"uid":0,"auid":7005,"ses":3,"comm":"nc","ret":-111,"error":"ECONNREFUSED","family":"inet","fd":3,"address":"127.0.0.1","port":9}"#;

    #[test]
    fn reads_back_events_byte_exact() {
        let r = report(&format!("{EXEC}\n{OPEN_FAIL}\n{CONNECT}\n{EXEC}\n"), None).unwrap();
        let u = &r.users[&Id::Set(7005)];
        let argv = vec![b"/bin/true".to_vec(), b"a\xff".to_vec()];
        assert_eq!(u.commands[&argv].count, 2);
        assert_eq!(u.connections.values().next().unwrap().failed, 1);
        assert_eq!(r.users[&Id::Unset].files[&b"/etc/shadow".to_vec()].failed, 1);
        assert_eq!(u.syscalls, None);
        assert_eq!(r.lost, None);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (bad, why) in [
            ("{\"event\":\"open\"", "not a"),
            ("not json", "not a"),
            (&OPEN_FAIL.replace("\"ret\":-13", "\"ret\":-2") as &str, "does not match"),
            (&OPEN_FAIL.replace("2026-11-24T13:22:29Z", "yesterday"), "bad time"),
            (&OPEN_FAIL.replace(",\"path\":\"/etc/shadow\"", ""), "without \"path\""),
            (&CONNECT.replace("127.0.0.1", "::1"), "is not inet"),
            (&EXEC.replace("\"auid\":7005", "\"auid\":\"bob\""), "bad auid"),
            (&EXEC.replace("\"pid\":10,", ""), "not a"),
        ] {
            let err = report(&format!("{EXEC}\n\n{bad}\n{EXEC}\n"), None).unwrap_err().to_string();
            assert!(err.starts_with("rec.json:3: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn filters_apply_and_unknown_kinds_are_skipped() {
        let mut r = Reports::new(Some(Id::Set(7005)), false);
        let mut f = InputFilters { uid: Some(7005), ..Default::default() };
        let other = r#"{"event":"sshlog","time":"2026-11-24T13:22:29Z","pid":1,"ppid":0,"uid":0,"auid":null,"comm":"sshd","ret":0}"#;
        let st = read(format!("{EXEC}\n{CONNECT}\n{other}\n").as_bytes(), "f", &mut f, &mut r).unwrap();
        assert_eq!(st, InputStats { lines: 3, unknown_kinds: 1 });
        let u = &r.users[&Id::Set(7005)];
        assert_eq!(u.commands.len(), 1);
        assert!(u.connections.is_empty(), "uid 0's connect filtered out");
        // --pid follows children through ppid.
        let mut r = Reports::new(None, false);
        let mut f = InputFilters { pids: HashSet::from([1]), ..Default::default() };
        let grandchild = EXEC.replace("\"pid\":10", "\"pid\":11").replace("\"ppid\":1", "\"ppid\":10");
        let stranger = EXEC.replace("\"pid\":10", "\"pid\":12").replace("\"ppid\":1", "\"ppid\":99");
        read(format!("{EXEC}\n{grandchild}\n{stranger}\n").as_bytes(), "f", &mut f, &mut r).unwrap();
        assert_eq!(r.users[&Id::Set(7005)].commands.values().next().unwrap().count, 2);
    }
}
