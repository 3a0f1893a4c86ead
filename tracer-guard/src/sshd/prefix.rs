//! Syslog prefix splitting: `<PRI>`, RFC 3164 and ISO timestamps, RFC 5424 headers and the
//! `sshd[pid]:` tag, down to the message sshd wrote.

/// Process names sshd logs under (OpenSSH ≥ 9.8 splits into sshd-session and sshd-auth).
const DAEMONS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// Splits off the syslog prefix. Returns `None` when the line has a prefix naming another program.
/// Returns (timestamp, pid, message).
pub fn split_prefix(line: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    let mut s = line;
    // <PRI> as sent to /dev/log.
    if let Some(rest) = s.strip_prefix('<')
        && let Some(end) = rest.find('>')
        && end > 0
        && end <= 3
        && rest[..end].bytes().all(|c| c.is_ascii_digit())
    {
        s = &rest[end + 1..];
        // RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
        if let Some(r5424) = s.strip_prefix("1 ") {
            return split_rfc5424(r5424);
        }
    }
    let ts_len = rfc3164_ts_len(s).or_else(|| iso_ts_len(s));
    match ts_len {
        Some(n) => {
            let ts = &s[..n];
            let rest = s[n..].trim_start_matches(' ');
            // Either "TAG: msg" (as sent to /dev/log) or "HOST TAG: msg" (as written to a file).
            if let Some((pid, msg)) = split_tag(rest) {
                return Some((Some(ts), pid, msg));
            }
            let (_host, after) = rest.split_once(' ')?;
            let (pid, msg) = split_tag(after)?;
            Some((Some(ts), pid, msg))
        }
        None => match split_tag(s) {
            Some((pid, msg)) => Some((None, pid, msg)),
            // Bare message, as `sshd -D -e` writes to stderr.
            None => Some((None, None, s)),
        },
    }
}

fn split_rfc5424(s: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    let mut it = s.splitn(6, ' ');
    let ts = it.next()?;
    let _host = it.next()?;
    let app = it.next()?;
    let procid = it.next()?;
    let _msgid = it.next()?;
    let rest = it.next().unwrap_or("");
    if !DAEMONS.contains(&app) {
        return None;
    }
    // Structured data is "-" or one or more "[...]" blocks; sshd sends none.
    let msg = if let Some(m) = rest.strip_prefix("- ") {
        m
    } else if rest == "-" {
        ""
    } else if rest.starts_with('[') {
        let end = rest.find("] ").map(|i| i + 2).unwrap_or(rest.len());
        &rest[end..]
    } else {
        rest
    };
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some((Some(ts), procid.parse().ok(), msg))
}

/// "sshd[1234]: msg" or "sshd: msg".
fn split_tag(s: &str) -> Option<(Option<u32>, &str)> {
    let (tag, msg) = s.split_once(": ").or_else(|| s.strip_suffix(':').map(|t| (t, "")))?;
    let (name, pid) = match tag.split_once('[') {
        Some((name, p)) => {
            let p = p.strip_suffix(']')?;
            (name, Some(p.parse::<u32>().ok()?))
        }
        None => (tag, None),
    };
    DAEMONS.contains(&name).then_some((pid, msg))
}

/// "Nov 24 13:22:29" / "Nov  4 13:22:29" (optionally with a year or fraction, as some daemons write).
fn rfc3164_ts_len(s: &str) -> Option<usize> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = s.as_bytes();
    if b.len() < 15 || !MONTHS.contains(&s.get(..3)?) || b[3] != b' ' {
        return None;
    }
    let day_ok = (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit() && b[6] == b' ';
    let t = &b[7..15];
    let time_ok = t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit());
    if !(day_ok && time_ok) {
        return None;
    }
    let mut n = 15;
    if b.get(n) == Some(&b'.') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    (b.get(n) == Some(&b' ')).then_some(n)
}

/// "2026-11-24T13:22:29.123456+00:00" (rsyslog's RFC3339 file format) followed by a space.
fn iso_ts_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    for (i, &c) in shape.iter().enumerate() {
        let ok = if c == b'd' { b[i].is_ascii_digit() } else { b[i] == c || (c == b'T' && b[i] == b' ') };
        if !ok {
            return None;
        }
    }
    let end = s.find(' ').filter(|&e| e >= 19)?;
    // If 'T' was a space the date and time are two words: find the next space.
    let end = if b[10] == b' ' { 11 + s[11..].find(' ')? } else { end };
    let tail = &s[19..end];
    tail.bytes().all(|c| c.is_ascii_digit() || b".+-:Z".contains(&c)).then_some(end)
}
