//! Ban notifications as fail2ban's `mail*`/`sendmail*` actions (`action_mw`, `action_mwl`):
//! one mail per ban, for the local sendmail interface (`sendmail -t -i`), with the address,
//! the failure count, the jail, optionally `whois` output and the matched lines.
//!
//! Only the configuration (root's) reaches the headers, checked when it is read; what a
//! client controls (user names in matched lines) and whois output only reach the body, with
//! control characters escaped, so neither can add a header or end the header block.

use std::fmt::Write as _;
use std::net::IpAddr;

/// What the mail carries besides the address, count and jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// `mail` / `sendmail`.
    Plain,
    /// `mail-whois` / `sendmail-whois`.
    Whois,
    /// `mail-whois-lines` / `sendmail-whois-lines`.
    WhoisLines,
}

impl MailKind {
    /// The kind for a fail2ban action name, if it is a mail action.
    pub fn from_action(name: &str) -> Option<Self> {
        Some(match name.strip_prefix("send").unwrap_or(name) {
            "mail" => MailKind::Plain,
            "mail-whois" => MailKind::Whois,
            "mail-whois-lines" => MailKind::WhoisLines,
            _ => return None,
        })
    }

    pub fn whois(self) -> bool {
        self != MailKind::Plain
    }

    pub fn lines(self) -> bool {
        self == MailKind::WhoisLines
    }
}

/// `action = mail…` with `destemail`, `sender`, `sendername`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub kind: MailKind,
    pub dest: String,
    pub sender: String,
    pub sendername: String,
}

/// Checks an address for a header: printable ASCII, no spaces, quotes, commas or brackets
/// (one plain `local@domain` per value; fail2ban's `dest` may list several, comma-separated).
pub fn check_addresses(v: &str) -> Result<(), String> {
    for a in v.split(',').map(str::trim) {
        let ok = !a.is_empty()
            && a.bytes().all(|b| b.is_ascii_graphic() && !b"\"(),:;<>[\\]".contains(&b))
            && a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
        if !ok {
            return Err(format!("{a:?} is not a mail address (local@domain)"));
        }
    }
    Ok(())
}

/// Checks a display name for a header: printable, no quotes or backslashes.
pub fn check_name(v: &str) -> Result<(), String> {
    if v.chars().all(|c| !c.is_control() && c != '"' && c != '\\') {
        Ok(())
    } else {
        Err(format!("{v:?}: a sender name must be printable without quotes or backslashes"))
    }
}

/// One ban to report.
pub struct BanMail<'a> {
    pub jail: &'a str,
    pub ip: IpAddr,
    /// Failures that led to the ban (0: banned by hand).
    pub failures: usize,
    /// This machine's name (`<fq-hostname>` in fail2ban's values).
    pub host: &'a str,
    pub whois: Option<&'a str>,
    pub lines: &'a [Vec<u8>],
}

/// Text from outside (client-controlled or whois) made safe for a body line: control
/// characters other than tab become `\xNN`, invalid UTF-8 is replaced.
fn body_text(b: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(b).chars() {
        if c.is_control() && c != '\t' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `<fq-hostname>` as fail2ban substitutes it in `sender`.
pub fn with_host(v: &str, host: &str) -> String {
    v.replace("<fq-hostname>", host)
}

/// The whole message for `sendmail -t -i` (headers, empty line, body; `\n` line ends).
pub fn compose(cfg: &MailConfig, m: &BanMail) -> String {
    let (ip, jail) = (m.ip, m.jail);
    let mut s = String::new();
    let _ = writeln!(s, "Subject: [Fail2Ban] {jail}: banned {ip} from {}", m.host);
    let _ = writeln!(s, "From: \"{}\" <{}>", cfg.sendername, with_host(&cfg.sender, m.host));
    let _ = writeln!(s, "To: {}", cfg.dest);
    let _ = writeln!(s, "Content-Type: text/plain; charset=UTF-8");
    let _ = writeln!(s, "Auto-Submitted: auto-generated");
    s.push('\n');
    let _ = writeln!(s, "Hi,\n");
    if m.failures > 0 {
        let _ = writeln!(
            s,
            "The IP {ip} has just been banned by tracer guard after\n{} attempts against {jail}.",
            m.failures
        );
    } else {
        let _ = writeln!(s, "The IP {ip} has just been banned by hand (tracer guard ban) in the {jail} jail.");
    }
    if cfg.kind.whois() {
        let _ = writeln!(s, "\nHere is more information about {ip} :\n");
        match m.whois {
            Some(w) => w.lines().for_each(|l| {
                let _ = writeln!(s, "{}", body_text(l.as_bytes()));
            }),
            None => s.push_str("(no whois information: the whois program is missing or failed)\n"),
        }
    }
    if cfg.kind.lines() {
        let _ = writeln!(s, "\nLines containing failures of {ip} (max {})", m.lines.len());
        for l in m.lines {
            let _ = writeln!(s, "{}", body_text(l));
        }
    }
    s.push_str("\nRegards,\n\ntracer guard\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: MailKind) -> MailConfig {
        MailConfig {
            kind,
            dest: "root@localhost".into(),
            sender: "guard@<fq-hostname>".into(),
            sendername: "Fail2Ban".into(),
        }
    }

    #[test]
    fn client_text_never_reaches_the_headers() {
        let lines = vec![
            b"sshd[7]: Invalid user x\r\nBcc: evil@example.com from 192.0.2.7 port 1".to_vec(),
            b"sshd[7]: Failed password for invalid user \n\nBcc: a@b from 192.0.2.7 port 1 ssh2".to_vec(),
        ];
        let m = BanMail {
            jail: "sshd",
            ip: "192.0.2.7".parse().unwrap(),
            failures: 2,
            host: "gw",
            whois: Some("netname: X\r\nBcc: whois@example.com"),
            lines: &lines,
        };
        let msg = compose(&cfg(MailKind::WhoisLines), &m);
        let (headers, body) = msg.split_once("\n\n").unwrap();
        assert_eq!(
            headers,
            "Subject: [Fail2Ban] sshd: banned 192.0.2.7 from gw\nFrom: \"Fail2Ban\" <guard@gw>\nTo: root@localhost\n\
             Content-Type: text/plain; charset=UTF-8\nAuto-Submitted: auto-generated"
        );
        assert!(body.contains("after\n2 attempts against sshd."), "{body}");
        assert!(body.contains("Invalid user x\\x0d\\x0aBcc: evil@example.com from 192.0.2.7"), "{body}");
        assert!(body.contains("invalid user \\x0a\\x0aBcc: a@b from"), "{body}");
        assert!(body.contains("netname: X\nBcc: whois@example.com\n"), "whois lines stay body lines: {body}");
        assert!(!body.lines().any(|l| l.starts_with("Bcc: evil") || l.starts_with("Bcc: a@b")), "{body}");
        let plain = compose(&cfg(MailKind::Plain), &m);
        assert!(!plain.contains("whois") && !plain.contains("Lines containing"), "{plain}");
    }

    #[test]
    fn header_values_are_checked() {
        assert!(check_addresses("root@localhost").is_ok());
        assert!(check_addresses("a@x.org, b@y.org").is_ok());
        for bad in ["root", "a@b\nBcc: c@d", "a b@c", "<a@b>", "a@b;c", ""] {
            assert!(check_addresses(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("Fail2Ban").is_ok());
        assert!(check_name("x\"\nBcc: y").is_err());
        assert_eq!(MailKind::from_action("sendmail-whois-lines"), Some(MailKind::WhoisLines));
        assert_eq!(MailKind::from_action("mail"), Some(MailKind::Plain));
        assert_eq!(MailKind::from_action("nftables"), None);
    }
}
