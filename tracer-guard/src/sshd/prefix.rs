//! Syslog prefix splitting: `<PRI>`, RFC 3164 and ISO timestamps, RFC 5424 headers and the
//! `sshd[pid]:` tag, down to the message sshd wrote.

/// Process names sshd logs under (OpenSSH ≥ 9.8 splits into sshd-session and sshd-auth).
const DAEMONS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// Splits off the syslog prefix. Returns `None` when the line has a prefix naming another program.
/// Returns (timestamp, pid, message).
///
/// Forms (fail2ban's `__prefix_line`): `[<PRI>]TIMESTAMP [<fac.level>] [HOST] [@vserver_x] TAG`,
/// RFC 5424 headers, journal short formats (`HOST TAG` without timestamp), and bare messages as
/// `sshd -e` writes them. TAG is `sshd[PID]:`, `sshd:`, `[sshd]:`, `[sshd]`, `(sshd)`,
/// `sshd(pam_unix)[PID]:` (also sshd-session, sshd-auth), optionally followed by a kernel
/// timestamp `kernel: [ N.N]` and Solaris' `[ID N fac.level]`.
pub fn split_prefix(line: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    split(line).map(|p| (p.ts, p.pid, p.msg))
}

/// A line's syslog prefix, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix<'a> {
    pub ts: Option<&'a str>,
    /// The host the line names (a central log server holds several hosts' sshd pids).
    pub host: Option<&'a str>,
    pub pid: Option<u32>,
    pub msg: &'a str,
}

/// [`split_prefix`] with the host.
pub fn split(line: &str) -> Option<Prefix<'_>> {
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
    let ts_len = rfc3164_ts_len(s).or_else(|| iso_ts_len(s)).or_else(|| journal_ts_len(s));
    match ts_len {
        Some(n) => {
            let ts = &s[..n];
            let mut rest = s[n..].trim_start_matches(' ');
            // BSD syslog's verbose "<auth.info>".
            if let Some(r) = rest.strip_prefix('<')
                && let Some((fl, after)) = r.split_once("> ")
                && fl.split_once('.').is_some_and(|(f, l)| is_word(f) && is_word(l))
            {
                rest = after.trim_start_matches(' ');
            }
            let (host, pid, msg) = host_and_tag(rest)?;
            Some(Prefix { ts: Some(ts), host, pid, msg })
        }
        None => match host_and_tag(s) {
            Some((host, pid, msg)) => Some(Prefix { ts: None, host, pid, msg }),
            // Bare message, as `sshd -D -e` writes to stderr.
            None => Some(Prefix { ts: None, host: None, pid: None, msg: s }),
        },
    }
}

/// `TAG msg` or `HOST [@vserver_x] TAG msg`.
fn host_and_tag(s: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    if let Some((pid, msg)) = split_tag(s) {
        return Some((None, pid, msg));
    }
    let (host, mut after) = s.split_once(' ')?;
    after = after.trim_start_matches(' ');
    if let Some(v) = after.strip_prefix("@vserver_")
        && let Some((_, a)) = v.split_once(' ')
    {
        after = a;
    }
    let (pid, msg) = split_tag(after)?;
    Some((Some(host), pid, msg))
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn split_rfc5424(s: &str) -> Option<Prefix<'_>> {
    let mut it = s.splitn(6, ' ');
    let ts = it.next()?;
    let host = it.next()?;
    let app = it.next()?;
    let procid = it.next()?;
    let _msgid = it.next()?;
    let rest = it.next().unwrap_or("");
    if !DAEMONS.contains(&app) {
        return None;
    }
    // Structured data is "-" or one or more "[...]" blocks (added by the relay, not sshd).
    let msg = if let Some(m) = rest.strip_prefix("- ") {
        m
    } else if rest == "-" {
        ""
    } else if rest.starts_with('[') {
        rest[sd_len(rest)?..].trim_start_matches(' ')
    } else {
        rest
    };
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Prefix { ts: Some(ts), host: Some(host).filter(|h| *h != "-"), pid: procid.parse().ok(), msg })
}

/// Length of RFC 5424 structured data: `[id k="v" ...]...`, where a quoted value may hold `]`
/// and `\"`.
fn sd_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(i)
}

/// The daemon tag and what may follow it, then the message. Returns (pid, message).
fn split_tag(s: &str) -> Option<(Option<u32>, &str)> {
    let (tok, rest) = s.split_once(' ').unwrap_or((s, ""));
    let (tok, colon) = match tok.strip_suffix(':') {
        Some(t) => (t, true),
        None => (tok, false),
    };
    let (name, pid, marked) = if let Some(n) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        (n, None, true)
    } else if let Some(n) = tok.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        (n, None, true)
    } else if let Some((n, p)) = tok.split_once('[') {
        let p = p.strip_suffix(']')?;
        (n, Some(p.parse::<u32>().ok()?), true)
    } else {
        (tok, None, false)
    };
    // "sshd(pam_unix)": the PAM module a message came through.
    let name = match name.split_once('(') {
        Some((n, sub)) if sub.ends_with(')') && is_word(&sub[..sub.len() - 1]) => n,
        Some(_) => return None,
        None => name,
    };
    // A bare "sshd" must end in a colon: "sshd msg" is not a tag.
    if !DAEMONS.contains(&name) || !(colon || marked) {
        return None;
    }
    let mut msg = rest.trim_start_matches(' ');
    if let Some(m) = strip_kernel(msg) {
        msg = m;
    }
    // Solaris: "[ID 800047 auth.info] ".
    if let Some(r) = msg.strip_prefix("[ID ")
        && let Some((inner, after)) = r.split_once("] ")
        && let Some((n, fl)) = inner.split_once(' ')
        && n.bytes().all(|c| c.is_ascii_digit())
        && !fl.contains(' ')
    {
        msg = after;
    }
    Some((pid, msg))
}

/// `kernel: [  970.69] ` / `kernel:[  970.69]: ` (fail2ban's `__kernel_prefix`).
fn strip_kernel(s: &str) -> Option<&str> {
    let r = s.strip_prefix("kernel:")?.trim_start_matches(' ').strip_prefix('[')?;
    let (t, after) = r.split_once(']')?;
    let t = t.trim_start_matches(' ');
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    Some(after.strip_prefix(':').unwrap_or(after).trim_start_matches(' '))
}

/// "Nov 24 13:22:29" / "Nov  4 13:22:29" (optionally with a year or fraction, as some daemons write).
fn rfc3164_ts_len(s: &str) -> Option<usize> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = s.as_bytes();
    if b.len() < 14 || !MONTHS.contains(&s.get(..3)?) || b[3] != b' ' {
        return None;
    }
    // "Nov 24", "Nov  4" and the unpadded "Feb 7".
    let d = if b[4].is_ascii_digit() && b[5] == b' ' { 6 } else { 7 };
    let day_ok = d == 6 || ((b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit() && b[6] == b' ');
    let t = b.get(d..d + 8)?;
    let time_ok = t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit());
    if !(day_ok && time_ok) {
        return None;
    }
    let mut n = d + 8;
    if b.get(n) == Some(&b'.') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    (b.get(n) == Some(&b' ')).then_some(n)
}

/// journalctl's other short formats: `short-full` "Fri 2026-11-27 13:22:29 UTC", `short-unix`
/// "1764249749.123456", `short-monotonic` "[  123.456789]".
fn journal_ts_len(s: &str) -> Option<usize> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let b = s.as_bytes();
    if DAYS.contains(&s.get(..3)?) && b.get(3) == Some(&b' ') {
        let n = 4 + iso_ts_len(&s[4..])?;
        // The time zone word.
        let tz = s[n + 1..].find(' ')?;
        let zone = &s[n + 1..n + 1 + tz];
        let ok = !zone.is_empty() && zone.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-:/_".contains(&c));
        return ok.then_some(n + 1 + tz);
    }
    let (body, end) = match s.strip_prefix('[') {
        Some(r) => {
            let close = r.find(']')?;
            (r[..close].trim_start_matches(' '), close + 2)
        }
        None => {
            let sp = s.find(' ')?;
            (&s[..sp], sp)
        }
    };
    let (secs, frac) = body.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    (digits(secs) && digits(frac) && b.get(end) == Some(&b' ')).then_some(end)
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
    // If 'T' was a space the date and time are two words: the timestamp ends at the next one.
    let from = if b[10] == b' ' { 11 } else { 0 };
    let end = from + s[from..].find(' ')?;
    if end < 19 {
        return None;
    }
    let tail = &s[19..end];
    tail.bytes().all(|c| c.is_ascii_digit() || b".+-:Z".contains(&c)).then_some(end)
}
