//! The kernel's audit value encodings, reimplemented from their documented behaviour
//! (kernel/audit.c, kernel/auditsc.c) so that ausearch/aureport decode our records exactly
//! as they decode the kernel's.

use std::{io::Write as _, net::IpAddr};

use crate::event::Peer;

/// Bytes of EXECVE argument data the kernel puts in one record (MAX_EXECVE_AUDIT_LEN).
const EXECVE_RECORD_MAX: usize = 7500;
/// The kernel's slack for an argument's `aN_len=..` / `aN[i]=` prefix (its 96-byte abuf).
const EXECVE_PREFIX_ROOM: usize = 96;
/// Bytes of the command line a PROCTITLE record carries (MAX_PROCTITLE_AUDIT_LEN).
pub(super) const PROCTITLE_MAX: usize = 128;

/// True when audit writes the value as hex: a double quote, a space or control character,
/// or any byte outside printable ASCII. Quoted values therefore never need escaping.
pub(super) fn needs_hex(b: &[u8]) -> bool {
    b.iter().any(|&c| c == b'"' || !(0x21..=0x7e).contains(&c))
}

/// Upper-case hex, two digits a byte, no quotes (audit_log_n_hex).
pub(super) fn hex(out: &mut Vec<u8>, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2);
    for &c in b {
        out.push(DIGITS[usize::from(c >> 4)]);
        out.push(DIGITS[usize::from(c & 15)]);
    }
}

fn quoted(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
}

/// A value that may hold anything (names, comm, exe, cwd): `"as is"` or bare hex.
pub(super) fn untrusted(out: &mut Vec<u8>, b: &[u8]) {
    if needs_hex(b) { hex(out, b) } else { quoted(out, b) }
}

/// The bodies of the EXECVE records for `argv`: the first starts with `argc=N`; long
/// command lines continue in further records, long arguments are cut into `aN[i]=` chunks
/// after an `aN_len=` giving the encoded length. The budget arithmetic follows the
/// kernel's, so record boundaries and chunk sizes land where the kernel puts them.
/// `argc` is the real count when known (argv may have been cut), else argv's length.
pub(super) fn execve_records(argv: &[Vec<u8>], argc: Option<u32>) -> Vec<Vec<u8>> {
    let argc = argc.map_or(argv.len(), |n| n as usize);
    let mut records = vec![format!("argc={argc}").into_bytes()];
    // Argument bytes (encoded, plus prefixes) still allowed in the current record.
    let mut room = EXECVE_RECORD_MAX;
    for (n, arg) in argv.iter().enumerate() {
        // An argument that does not fit the kernel's 7500-byte copy buffer spans several
        // copies and is always hex, so its chunks encode alike.
        let spans = arg.len() >= EXECVE_RECORD_MAX;
        let encode = spans || needs_hex(arg);
        let full_len = if encode { arg.len() * 2 } else { arg.len() };
        let mut rest: &[u8] = arg;
        // Encoded bytes left to write; for quoted chunks the 2 quotes are counted once.
        let mut pending = if encode { rest.len() * 2 } else { rest.len() + 2 };
        let mut chunk = 0usize;
        loop {
            if room < EXECVE_PREFIX_ROOM + 8 {
                records.push(Vec::new());
                room = EXECVE_RECORD_MAX;
            }
            let rec = records.last_mut().expect("at least one record");
            let before = rec.len();
            if spans || chunk > 0 || pending + EXECVE_PREFIX_ROOM > room {
                if chunk == 0 {
                    let _ = write!(rec, " a{n}_len={full_len}");
                }
                let _ = write!(rec, " a{n}[{chunk}]=");
                chunk += 1;
            } else {
                let _ = write!(rec, " a{n}=");
            }
            room -= rec.len() - before;
            let take = if encode {
                let take = if pending > room { room / 2 } else { rest.len() };
                hex(rec, &rest[..take]);
                room -= take * 2;
                pending -= take * 2;
                take
            } else {
                let take = if pending > room { room - 2 } else { rest.len() };
                quoted(rec, &rest[..take]);
                room -= take + 2;
                pending -= take;
                take
            };
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
        }
    }
    records
}

/// The PROCTITLE value for a command line (NUL-separated, as /proc/PID/cmdline): its
/// first 128 bytes with trailing unprintable bytes (the NULs) trimmed, then the untrusted
/// encoding — so a multi-argument title is hex — or `(null)` when nothing is left.
pub(super) fn proctitle(out: &mut Vec<u8>, cmdline: Option<&[u8]>) {
    // The kernel's isprint() is Latin-1: 0x20..0x7e and 0xa0..0xff.
    let printable = |c: u8| (0x20..=0x7e).contains(&c) || c >= 0xa0;
    let b = cmdline.map(|c| &c[..c.len().min(PROCTITLE_MAX)]).unwrap_or_default();
    let keep = b.iter().rposition(|&c| printable(c)).map_or(0, |i| i + 1);
    if keep == 0 {
        out.extend_from_slice(b"(null)");
    } else {
        untrusted(out, &b[..keep]);
    }
}

/// The struct sockaddr the caller passed to connect(2), as SOCKADDR's `saddr=` shows it:
/// family (little-endian u16), then for inet/inet6 the port big-endian and the address
/// (flowinfo and scope id, which the tracer does not see, as 0), for unix sun_path — a
/// pathname with its terminating NUL (as most callers pass it), an abstract name as is.
pub(super) fn sockaddr(peer: &Peer) -> Vec<u8> {
    let mut sa = Vec::with_capacity(28);
    match peer {
        Peer::Inet { address: IpAddr::V4(a), port } => {
            sa.extend_from_slice(&2u16.to_le_bytes());
            sa.extend_from_slice(&port.to_be_bytes());
            sa.extend_from_slice(&a.octets());
            sa.extend_from_slice(&[0; 8]);
        }
        Peer::Inet { address: IpAddr::V6(a), port } => {
            sa.extend_from_slice(&10u16.to_le_bytes());
            sa.extend_from_slice(&port.to_be_bytes());
            sa.extend_from_slice(&[0; 4]);
            sa.extend_from_slice(&a.octets());
            sa.extend_from_slice(&[0; 4]);
        }
        Peer::Unix { path } => {
            sa.extend_from_slice(&1u16.to_le_bytes());
            sa.extend_from_slice(path);
            if path.first() != Some(&0) {
                sa.push(0);
            }
        }
    }
    sa
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn hex_rules_match_the_kernel() {
        assert_eq!(s(|o| untrusted(o, b"/bin/true")), "\"/bin/true\"");
        assert_eq!(s(|o| untrusted(o, b"")), "\"\"");
        assert_eq!(s(|o| untrusted(o, b"a b")), "612062");
        assert_eq!(s(|o| untrusted(o, b"q\"t")), "712274");
        assert_eq!(s(|o| untrusted(o, b"new\nline")), "6E65770A6C696E65");
        assert_eq!(s(|o| untrusted(o, b"tab\t")), "74616209");
        assert_eq!(s(|o| untrusted(o, b"\x7f")), "7F");
        assert_eq!(s(|o| untrusted(o, b"bad\xff")), "626164FF");
        assert_eq!(s(|o| untrusted(o, "é".as_bytes())), "C3A9");
        // Printable ASCII punctuation stays quoted, backslash and '=' included.
        assert_eq!(s(|o| untrusted(o, b"a=b\\c'~")), "\"a=b\\c'~\"");
    }

    fn args(v: &[&[u8]]) -> Vec<Vec<u8>> {
        v.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn execve_short_arguments() {
        let r = execve_records(&args(&[b"/bin/echo", b"with space", b"", b"x\"y"]), None);
        assert_eq!(r.len(), 1);
        assert_eq!(String::from_utf8_lossy(&r[0]), "argc=4 a0=\"/bin/echo\" a1=77697468207370616365 a2=\"\" a3=782279");
        assert_eq!(execve_records(&[], None), vec![b"argc=0".to_vec()]);
        assert_eq!(execve_records(&[b"x".to_vec()], Some(3000)), vec![b"argc=3000 a0=\"x\"".to_vec()]);
    }

    /// Reassembles one argument from the records, checking the chunk numbering.
    fn reassemble(records: &[Vec<u8>], n: usize) -> (Option<usize>, Vec<String>) {
        let text: String = records.iter().map(|r| String::from_utf8(r.clone()).unwrap()).collect::<Vec<_>>().join(" ");
        let len = text.split(' ').find_map(|f| f.strip_prefix(&format!("a{n}_len="))).map(|v| v.parse().unwrap());
        let chunks: Vec<String> = (0..)
            .map_while(|i| text.split(' ').find_map(|f| f.strip_prefix(&format!("a{n}[{i}]=")).map(str::to_string)))
            .collect();
        (len, chunks)
    }

    fn unhex(h: &str) -> Vec<u8> {
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn execve_long_argument_spans_records_as_hex_chunks() {
        let big = vec![b'y'; 10_000];
        let r = execve_records(&[b"/bin/true".to_vec(), big.clone(), b"tail".to_vec()], None);
        // 20,000 hex digits at ~7,500 a record: 3 records, the first opening with argc.
        assert_eq!(r.len(), 3, "{:?}", r.iter().map(|x| x.len()).collect::<Vec<_>>());
        assert!(r[0].starts_with(b"argc=3 a0=\"/bin/true\" a1_len=20000 a1[0]="));
        // Continuation records start with the separator, as the kernel's do.
        assert!(r[1].starts_with(b" a1[1]="), "{}", String::from_utf8_lossy(&r[1][..20]));
        let (len, chunks) = reassemble(&r, 1);
        assert_eq!(len, Some(20_000));
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().flat_map(|c| unhex(c)).collect::<Vec<u8>>(), big);
        for rec in &r {
            assert!(rec.len() <= EXECVE_RECORD_MAX + 16, "record of {} bytes", rec.len());
        }
        assert!(String::from_utf8_lossy(r.last().unwrap()).ends_with(" a2=\"tail\""));
    }

    #[test]
    fn execve_argument_that_does_not_fit_the_record_is_chunked_quoted() {
        // 7,000 printable bytes after a 600-byte argument: quoted, but cut at the record end.
        let first = vec![b'a'; 600];
        let second = vec![b'b'; 7000];
        let r = execve_records(&[first, second.clone()], None);
        assert_eq!(r.len(), 2);
        let (len, chunks) = reassemble(&r, 1);
        assert_eq!(len, Some(7000));
        assert_eq!(chunks.len(), 2);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.trim_matches('"').bytes()).collect();
        assert_eq!(joined, second);
        assert!(chunks.iter().all(|c| c.starts_with('"') && c.ends_with('"')));
    }

    #[test]
    fn execve_exactly_at_the_copy_buffer_size_is_hex() {
        let r = execve_records(&[vec![b'z'; 7499], vec![b'w'; 7500]], None);
        let (len0, c0) = reassemble(&r, 0);
        assert_eq!(len0, Some(7499), "7,499 bytes fit one copy: quoted chunks");
        assert!(c0[0].starts_with('"'));
        let (len1, c1) = reassemble(&r, 1);
        assert_eq!(len1, Some(15_000), "7,500 bytes span copies: hex");
        assert_eq!(c1.iter().flat_map(|c| unhex(c)).count(), 7500);
    }

    #[test]
    fn proctitle_like_the_kernel() {
        assert_eq!(s(|o| proctitle(o, Some(b"/bin/true\0"))), "\"/bin/true\"");
        assert_eq!(s(|o| proctitle(o, Some(b"sh\0-c\0exit 7\0"))), "7368002D6300657869742037");
        assert_eq!(s(|o| proctitle(o, None)), "(null)");
        assert_eq!(s(|o| proctitle(o, Some(b"\0\0"))), "(null)");
        let long: Vec<u8> = [b"/bin/echo\0".as_slice(), &[b'x'; 200], b"\0"].concat();
        let t = s(|o| proctitle(o, Some(&long)));
        assert_eq!(t.len(), PROCTITLE_MAX * 2, "capped at 128 bytes, hex");
        assert!(t.starts_with("2F62696E2F6563686F0078"));
    }

    #[test]
    fn sockaddr_encodings() {
        let mut h = Vec::new();
        hex(&mut h, &sockaddr(&Peer::Inet { address: "127.0.0.1".parse().unwrap(), port: 9 }));
        assert_eq!(String::from_utf8(h).unwrap(), "020000097F0000010000000000000000");
        let mut h = Vec::new();
        hex(&mut h, &sockaddr(&Peer::Inet { address: "::1".parse().unwrap(), port: 443 }));
        assert_eq!(String::from_utf8(h).unwrap(), "0A0001BB000000000000000000000000000000000000000100000000");
        let mut h = Vec::new();
        hex(&mut h, &sockaddr(&Peer::Unix { path: b"/run/x.sock".to_vec() }));
        assert_eq!(String::from_utf8(h).unwrap(), "01002F72756E2F782E736F636B00");
        let mut h = Vec::new();
        hex(&mut h, &sockaddr(&Peer::Unix { path: b"\0abs".to_vec() }));
        assert_eq!(String::from_utf8(h).unwrap(), "010000616273");
    }
}
