//! Reads audit.log records written by `tracer trace --format audit` or `tracer daemon`
//! (log_format = audit) back into a report: the records of one event share their
//! `msg=audit(TIME:SERIAL)` stamp; SYSCALL gives who and what, EXECVE the argv, PATH and
//! CWD the file, SOCKADDR the peer. Values are `"as is"` or bare hex, as the sink writes
//! them. A line that is not such a record is an error naming the file and line.

use std::{io::BufRead, net::IpAddr};

use super::{
    Activity, Reports,
    input::{InputError, InputFilters, InputStats, passes},
};
use crate::event::{AUID_UNSET, Id, Peer};

/// One event's records, gathered until the stamp changes.
#[derive(Default)]
struct Ev {
    stamp: Vec<u8>,
    syscall: Option<u32>,
    success: bool,
    auid: u32,
    uid: u32,
    pid: u32,
    ppid: u32,
    comm: Vec<u8>,
    argv: Vec<(usize, Vec<u8>)>,
    name: Option<Vec<u8>>,
    cwd: Option<Vec<u8>>,
    saddr: Option<Vec<u8>>,
}

fn unhex(v: &[u8]) -> Option<Vec<u8>> {
    if !v.len().is_multiple_of(2) {
        return None;
    }
    v.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()).collect()
}

/// `"text"` or hex.
fn value(v: &[u8]) -> Option<Vec<u8>> {
    match v.strip_prefix(b"\"") {
        Some(q) => q.strip_suffix(b"\"").map(<[u8]>::to_vec),
        None => unhex(v),
    }
}

fn num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn peer(sa: &[u8]) -> Option<Peer> {
    let family = u16::from_le_bytes([*sa.first()?, *sa.get(1)?]);
    let port = || Some(u16::from_be_bytes([*sa.get(2)?, *sa.get(3)?]));
    match family {
        2 => {
            let a: [u8; 4] = sa.get(4..8)?.try_into().ok()?;
            Some(Peer::Inet { address: IpAddr::from(a), port: port()? })
        }
        10 => {
            let a: [u8; 16] = sa.get(8..24)?.try_into().ok()?;
            Some(Peer::Inet { address: IpAddr::from(a), port: port()? })
        }
        1 => {
            let p = sa.get(2..)?;
            // Abstract names keep their leading NUL; filesystem names end at the first NUL.
            let p = if p.first() == Some(&0) { p } else { p.split(|&b| b == 0).next()? };
            Some(Peer::Unix { path: p.to_vec() })
        }
        _ => None,
    }
}

pub(crate) fn read(
    mut r: impl BufRead,
    name: &str,
    filters: &mut InputFilters,
    reports: &mut Reports,
) -> Result<InputStats, InputError> {
    let mut stats = InputStats::default();
    let mut ev = Ev::default();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|source| InputError::Io { path: name.to_string(), source })?;
        if n == 0 {
            finish(&mut ev, filters, reports, &mut stats);
            return Ok(stats);
        }
        stats.lines += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let lineno = stats.lines;
        let bad = |msg: &str| InputError::Malformed { path: name.to_string(), line: lineno, msg: msg.to_string() };
        let mut fields = line.split(|&b| b == b' ');
        let ty = fields.next().and_then(|t| t.strip_prefix(b"type=")).ok_or_else(|| bad("not an audit record"))?;
        let stamp = fields
            .next()
            .and_then(|m| m.strip_prefix(b"msg=audit("))
            .and_then(|m| m.strip_suffix(b"):"))
            .ok_or_else(|| bad("no msg=audit(...) stamp"))?;
        if stamp != ev.stamp.as_slice() {
            finish(&mut ev, filters, reports, &mut stats);
            ev.stamp = stamp.to_vec();
        }
        for f in fields {
            let Some(eq) = f.iter().position(|&b| b == b'=') else { continue };
            let (k, v) = (&f[..eq], &f[eq + 1..]);
            let bad_value = || bad(&format!("bad {} value", String::from_utf8_lossy(k)));
            match (ty, k) {
                (b"SYSCALL", b"syscall") => ev.syscall = Some(num(v).ok_or_else(bad_value)?),
                (b"SYSCALL", b"success") => ev.success = v == b"yes",
                (b"SYSCALL", b"auid") => ev.auid = num(v).ok_or_else(bad_value)?,
                (b"SYSCALL", b"uid") => ev.uid = num(v).ok_or_else(bad_value)?,
                (b"SYSCALL", b"pid") => ev.pid = num(v).ok_or_else(bad_value)?,
                (b"SYSCALL", b"ppid") => ev.ppid = num(v).ok_or_else(bad_value)?,
                (b"SYSCALL", b"comm") => ev.comm = value(v).ok_or_else(bad_value)?,
                (b"EXECVE", k) if k.first() == Some(&b'a') && k[1..].iter().all(u8::is_ascii_digit) => {
                    ev.argv.push((num(&k[1..]).ok_or_else(bad_value)?, value(v).ok_or_else(bad_value)?));
                }
                (b"EXECVE", k) if k.first() == Some(&b'a') && k.ends_with(b"]") => {
                    // aN[i]=HEX: one chunk of a long argument, in order.
                    let idx = k[1..].iter().position(|&b| b == b'[').ok_or_else(bad_value)?;
                    let i: usize = num(&k[1..=idx]).ok_or_else(bad_value)?;
                    let chunk = unhex(v).ok_or_else(bad_value)?;
                    match ev.argv.last_mut() {
                        Some((j, a)) if *j == i => a.extend_from_slice(&chunk),
                        _ => ev.argv.push((i, chunk)),
                    }
                }
                (b"PATH", b"name") if ev.name.is_none() => ev.name = value(v),
                (b"CWD", b"cwd") => ev.cwd = value(v),
                (b"SOCKADDR", b"saddr") => ev.saddr = Some(unhex(v).ok_or_else(bad_value)?),
                _ => {}
            }
        }
    }
}

/// Adds the gathered event to the report and starts the next one.
fn finish(ev: &mut Ev, f: &mut InputFilters, reports: &mut Reports, stats: &mut InputStats) {
    let e = std::mem::take(ev);
    let Some(nr) = e.syscall else { return };
    let auid = if e.auid == AUID_UNSET { Id::Unset } else { Id::Set(e.auid) };
    let path;
    let argv: Vec<Vec<u8>>;
    let peer_v;
    let act = match nr {
        59 | 322 => {
            argv = e.argv.into_iter().map(|(_, a)| a).collect();
            path = e.name.unwrap_or_default();
            Activity::Exec { argv: &argv, filename: &path, root: b"/" }
        }
        2 | 85 | 257 | 437 => {
            let name = e.name.unwrap_or_default();
            path = match (&e.cwd, name.first()) {
                (Some(cwd), Some(&c)) if c != b'/' => [cwd.as_slice(), b"/", &name].concat(),
                _ => name,
            };
            Activity::Open { path: &path }
        }
        42 => match e.saddr.as_deref().and_then(peer) {
            Some(p) => {
                peer_v = p;
                Activity::Connect { peer: &peer_v }
            }
            None => return,
        },
        _ => {
            stats.unknown_kinds += 1;
            return;
        }
    };
    if passes(f, e.pid, Some(e.ppid), e.uid, &e.comm) {
        reports.add(auid, act, !e.success);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=10 auid=7005 uid=7005 comm=776F726B206C6F6164 exe=\"/x\" key=(null)
type=EXECVE msg=audit(1.000:1): argc=3 a0=\"/bin/echo\" a1=612062 a2_len=8 a2[0]=4142 a2[1]=4344
type=CWD msg=audit(1.000:1): cwd=\"/tmp\"
type=PATH msg=audit(1.000:1): item=0 name=\"/bin/echo\" nametype=NORMAL
type=PROCTITLE msg=audit(1.000:1): proctitle=2F62696E2F6563686F
type=SYSCALL msg=audit(1.000:2): arch=c000003e syscall=257 success=no exit=-13 ppid=1 pid=10 auid=7005 uid=7005 comm=\"cat\" exe=\"/x\" key=(null)
type=CWD msg=audit(1.000:2): cwd=\"/etc\"
type=PATH msg=audit(1.000:2): item=0 name=\"shadow\" nametype=UNKNOWN
type=SYSCALL msg=audit(1.000:3): arch=c000003e syscall=42 success=no exit=-111 ppid=1 pid=10 auid=4294967295 uid=0 comm=\"nc\" exe=\"/x\" key=(null)
type=SOCKADDR msg=audit(1.000:3): saddr=0A000009000000000000000000000000000000000000000100000000
type=SYSCALL msg=audit(1.000:4): arch=c000003e syscall=42 success=yes exit=0 ppid=1 pid=10 auid=4294967295 uid=0 comm=\"nc\" exe=\"/x\" key=(null)
type=SOCKADDR msg=audit(1.000:4): saddr=01002F72756E2F736F636B00
";

    #[test]
    fn reads_back_the_sinks_records() {
        let mut r = Reports::new(None, false);
        let st = read(LOG.as_bytes(), "a.log", &mut InputFilters::default(), &mut r).unwrap();
        assert_eq!(st.unknown_kinds, 0);
        let u = &r.users[&Id::Set(7005)];
        let argv = vec![b"/bin/echo".to_vec(), b"a b".to_vec(), b"ABCD".to_vec()];
        assert_eq!(u.commands[&argv].count, 1);
        assert_eq!(u.files[&b"/etc/shadow".to_vec()].failed, 1, "relative name joined to the cwd");
        let unset = &r.users[&Id::Unset];
        let v6 = Peer::Inet { address: "::1".parse().unwrap(), port: 9 };
        assert_eq!(unset.connections[&v6].failed, 1);
        assert_eq!(unset.connections[&Peer::Unix { path: b"/run/sock".to_vec() }].count, 1);
    }

    #[test]
    fn bad_records_name_file_and_line() {
        for (bad, why) in [("type=SYSCALL nostamp", "stamp"), ("hello", "not an audit record")] {
            let text = format!("{LOG}{bad}\n");
            let mut r = Reports::new(None, false);
            let err = read(text.as_bytes(), "a.log", &mut InputFilters::default(), &mut r).unwrap_err().to_string();
            assert!(err.starts_with("a.log:13: ") && err.contains(why), "{err}");
        }
        let text = LOG.replace("syscall=257", "syscall=x");
        let mut r = Reports::new(None, false);
        let err = read(text.as_bytes(), "a.log", &mut InputFilters::default(), &mut r).unwrap_err().to_string();
        assert!(err.starts_with("a.log:6: bad syscall value"), "{err}");
    }
}
