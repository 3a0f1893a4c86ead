//! DNS messages the job sent or read (captured by the kernel, so attacker-controlled):
//! the names asked and the addresses answered for them. Parsing is simple-dns's; a message
//! it rejects yields nothing, and names stay bytes until they are escaped for display.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::{Name, Packet, rdata::RData};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The question names (lower-cased: DNS names compare without case).
    pub names: Vec<Vec<u8>>,
    /// A and AAAA answers, each credited to the question name (a CNAME chain ends at the
    /// name the job asked for).
    pub answers: Vec<(Vec<u8>, IpAddr)>,
}

fn name_bytes(n: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in n.as_bytes() {
        if !out.is_empty() {
            out.push(b'.');
        }
        for &b in label {
            // A dot inside a label must not pass for a label boundary ("evil.com" as one
            // label is not evil.com).
            if b == b'.' {
                out.extend_from_slice(b"\\x2e");
            } else {
                out.push(b.to_ascii_lowercase());
            }
        }
    }
    out
}

pub fn parse(msg: &[u8]) -> Option<Message> {
    // Over TCP a message follows its 2-byte length.
    let p = Packet::parse(msg).ok().or_else(|| {
        let (len, rest) = msg.split_first_chunk::<2>()?;
        (usize::from(u16::from_be_bytes(*len)) >= rest.len()).then(|| Packet::parse(rest).ok()).flatten()
    })?;
    let names: Vec<Vec<u8>> = p.questions.iter().map(|q| name_bytes(&q.qname)).collect();
    let asked = names.first().cloned()?;
    let answers = p
        .answers
        .iter()
        .filter_map(|rr| match &rr.rdata {
            RData::A(a) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
            RData::AAAA(a) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
            _ => None,
        })
        .map(|ip| (asked.clone(), ip))
        .collect();
    Some(Message { names, answers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `name` with one A record (compression pointer to the question).
    fn response(name: &[&[u8]], ip: [u8; 4]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for l in name {
            m.push(l.len() as u8);
            m.extend_from_slice(l);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&ip);
        m
    }

    #[test]
    fn names_and_answers() {
        let m = parse(&response(&[b"Registry", b"test"], [10, 88, 0, 2])).unwrap();
        assert_eq!(m.names, [b"registry.test".to_vec()]);
        assert_eq!(m.answers, [(b"registry.test".to_vec(), IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2)))]);
    }

    #[test]
    fn tcp_messages_have_a_length_first() {
        let m = response(&[b"registry", b"test"], [10, 88, 0, 2]);
        let mut tcp = u16::try_from(m.len()).unwrap().to_be_bytes().to_vec();
        tcp.extend_from_slice(&m);
        assert_eq!(parse(&tcp), parse(&m));
        assert!(parse(&tcp).is_some());
    }

    #[test]
    fn hostile_messages_do_not_crash_or_mislead() {
        // A label with control bytes and a dot inside stays one label; escaped later.
        let m = parse(&response(&[b"registry.test\n\x1b", b"x"], [1, 2, 3, 4])).unwrap();
        assert_eq!(m.names, [b"registry\\x2etest\n\x1b.x".to_vec()]);
        assert_eq!(crate::event::escape(&m.names[0]), "registry\\\\x2etest\\x0a\\x1b.x");
        // Truncations, a pointer loop, garbage: no panic.
        let good = response(&[b"registry", b"test"], [10, 88, 0, 2]);
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        let mut looped = good.clone();
        looped[12] = 0xc0;
        looped[13] = 12;
        let _ = parse(&looped);
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let junk: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse(&junk);
        }
    }
}
