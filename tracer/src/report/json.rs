//! The report as JSON: one object with `--auid`, else an array of them in AUID order.
//! Paths and argv use the same lossless string encoding as `trace --format json`
//! (`bytes::json_str`: bytes that are not UTF-8 become `\udcXX`). Written by hand for that
//! encoding; entries keep the text report's order (count, then name).

use super::{Reports, Tally, UserReport, command_line, sorted, sorted_syscalls};
use std::io::Write as _;

use crate::{
    bytes::json_str,
    event::{Id, Peer},
};

fn tally(out: &mut Vec<u8>, t: Tally) {
    let _ = write!(out, ",\"count\":{},\"failed\":{}}}", t.count, t.failed);
}

/// `{"KEY": "name", "count": .., "failed": ..}`: a file or a root.
fn named(out: &mut Vec<u8>, key: &str, name: &[u8], t: Tally) {
    let _ = write!(out, "{{\"{key}\":");
    json_str(out, name);
    tally(out, t);
}

fn list<T>(out: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut each: impl FnMut(&mut Vec<u8>, T)) {
    out.push(b'[');
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, it);
    }
    out.push(b']');
}

fn user(out: &mut Vec<u8>, auid: Id, u: &UserReport, lost: Option<u64>) {
    out.extend_from_slice(b"{\"auid\":");
    match auid {
        Id::Set(n) => {
            let _ = write!(out, "{n}");
        }
        Id::Unset => out.extend_from_slice(b"\"unset\""),
        Id::Unknown => out.extend_from_slice(b"null"),
    }
    // null, not {}: a recorded file has no counts, which is not the same as none made.
    out.extend_from_slice(b",\"syscalls\":");
    match &u.syscalls {
        Some(s) => list(out, sorted_syscalls(s), |out, (sc, _, n)| {
            let _ = write!(
                out,
                "{{\"syscall\":\"{}\",\"nr\":{},\"arch\":\"{}\",\"count\":{n}}}",
                sc.name(),
                sc.nr,
                sc.arch()
            );
        }),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"commands\":");
    list(out, sorted(&u.commands, |argv| command_line(argv)), |out, (line, argv, t)| {
        out.extend_from_slice(b"{\"command\":");
        json_str(out, &line);
        out.extend_from_slice(b",\"argv\":");
        list(out, argv.iter(), |out, a| json_str(out, a));
        tally(out, t);
    });
    out.extend_from_slice(b",\"files\":");
    list(out, sorted(&u.files, |p| p.clone()), |out, (path, _, t)| named(out, "path", &path, t));
    out.extend_from_slice(b",\"connections\":");
    list(out, sorted(&u.connections, super::peer_name), |out, (_, peer, t)| {
        let _ = write!(out, "{{\"family\":\"{}\"", peer.family());
        match peer {
            Peer::Inet { address, port } => {
                let _ = write!(out, ",\"address\":\"{address}\",\"port\":{port}");
            }
            Peer::Unix { path } => {
                out.extend_from_slice(b",\"path\":");
                json_str(out, path);
            }
        }
        tally(out, t);
    });
    out.extend_from_slice(b",\"roots\":");
    list(out, sorted(&u.roots, |p| p.clone()), |out, (root, _, t)| named(out, "root", &root, t));
    out.extend_from_slice(b",\"lost_events\":");
    match lost {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// The whole document, newline-terminated.
pub(crate) fn render(r: &Reports) -> Vec<u8> {
    let mut out = Vec::new();
    if r.single() {
        if let Some((auid, u)) = r.users.iter().next() {
            user(&mut out, *auid, u, r.lost);
        }
    } else {
        out.extend_from_slice(b"[\n");
        for (i, (auid, u)) in r.users.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            user(&mut out, *auid, u, r.lost);
        }
        out.extend_from_slice(b"\n]");
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::{bytes::JsonBytes, event::Peer, report::Activity};

    #[test]
    fn shape_of_one_auid() {
        let mut r = Reports::new(Some(Id::Set(7005)), true);
        let argv = vec![b"uname".to_vec(), b"-m".to_vec()];
        r.add(Id::Set(7005), Activity::Exec { argv: &argv, filename: b"/usr/bin/uname", root: b"/" }, false);
        r.add(Id::Set(7005), Activity::Open { path: b"/etc/passwd" }, false);
        let peer = Peer::Inet { address: "127.0.0.1".parse().unwrap(), port: 9 };
        for _ in 0..4 {
            r.add(Id::Set(7005), Activity::Connect { peer: &peer }, true);
        }
        let unix = Peer::Unix { path: b"\0abs".to_vec() };
        r.add(Id::Set(7005), Activity::Connect { peer: &unix }, false);
        r.add_syscounts(&HashMap::from([((7005, 0), 207)]));
        r.lost = Some(0);
        let v: Value = serde_json::from_slice(&render(&r)).unwrap();
        assert_eq!(
            v,
            json!({"auid": 7005, "syscalls": [{"syscall": "read", "nr": 0, "arch": "x86_64", "count": 207}],
                "commands": [{"command": "uname -m", "argv": ["uname", "-m"], "count": 1, "failed": 0}],
                "files": [{"path": "/etc/passwd", "count": 1, "failed": 0}],
                "connections": [{"family": "inet", "address": "127.0.0.1", "port": 9, "count": 4, "failed": 4},
                                {"family": "unix", "path": "\u{0}abs", "count": 1, "failed": 0}],
                "roots": [], "lost_events": 0})
        );
    }

    #[test]
    fn array_without_auid_nulls_for_a_recorded_file_and_lossless_paths() {
        let mut r = Reports::new(None, false);
        r.add(Id::Set(1), Activity::Open { path: b"/tmp/bad\xff\n" }, true);
        r.add(Id::Unset, Activity::Open { path: b"/x" }, false);
        let out = render(&r);
        // serde_json's Value refuses lone surrogates; the exact bytes are checked below.
        let text = std::str::from_utf8(&out).unwrap();
        let v: Value = serde_json::from_str(&text.replace("\\udcff", "?")).unwrap();
        assert_eq!(v[0]["auid"], 1);
        assert_eq!(v[1]["auid"], "unset");
        assert_eq!(v[0]["syscalls"], Value::Null);
        assert_eq!(v[0]["lost_events"], Value::Null);
        assert_eq!(v[0]["files"][0]["failed"], 1);
        // The path's exact bytes come back through the surrogate escapes.
        let start = text.find("\"/tmp/bad").unwrap();
        let end = start + text[start + 1..].find('"').unwrap() + 2;
        let back: JsonBytes = serde_json::from_str(&text[start..end]).unwrap();
        assert_eq!(back.0, b"/tmp/bad\xff\n");
    }
}
