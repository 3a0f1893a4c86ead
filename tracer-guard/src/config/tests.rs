use super::*;
use crate::mail::{MailConfig, MailKind};

fn err(text: &str) -> (String, usize, String, String) {
    match parse_str(text, "jail.local").unwrap_err() {
        ConfigError::Invalid { file, line, key, message } => (file, line, key, message),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn seed_sample_loads() {
    let c =
        parse_str("[DEFAULT]\nbantime = 3600\nbanaction = iptables-multiport\n[sshd]\nenabled = true\n", "jail.local")
            .unwrap();
    assert!(c.jail.enabled);
    assert_eq!(c.jail.bantime, 3600);
    assert_eq!(c.jail.banaction, BanAction::Iptables { multiport: true, allports: false });
    assert_eq!((c.jail.maxretry, c.jail.findtime), (5, 600));
    assert_eq!(c.jail.ports, PortSpec::ssh());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn defaults_match_fail2ban() {
    let c = parse_str("", "x").unwrap().jail;
    assert!(!c.enabled);
    assert_eq!((c.maxretry, c.findtime, c.bantime), (5, 600, 600));
    assert_eq!(c.banaction, BanAction::Nftables { allports: false });
    assert_eq!(c.mode, Mode::Normal);
    assert!(c.ignoreself);
    assert_eq!(c.ignoreip.len(), 2);
    assert!(!c.increment.enabled);
}

#[test]
fn full_file_with_interpolation_and_warnings() {
    let text = "\
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1, 192.0.2.0/24
bantime  = 1h30m ; comment
findtime = 10m
bantime.increment = true
bantime.factor = 2
bantime.maxtime = 1w
bantime.multipliers = 1 5 30
action = %(action_mwl)s
destemail = root@localhost
sendername = Fail2Ban
mta = sendmail
my_port = 2222

[sshd]
enabled = true
port    = ssh,%(my_port)s,3000:3005
mode    = aggressive
logpath = %(sshd_log)s
backend = %(sshd_backend)s
filter  = sshd[mode=extra]

[apache-auth]
enabled = true

[nginx-http-auth]
port = http
";
    let c = parse_str(text, "jail.local").unwrap();
    let j = &c.jail;
    assert_eq!(j.bantime, 5400);
    assert_eq!(j.ports.iptables(), "22,2222,3000:3005");
    assert_eq!(j.mode, Mode::Extra, "filter's mode wins");
    assert_eq!(j.logpath, vec![PathBuf::from("/var/log/auth.log")]);
    assert_eq!(
        j.increment,
        Increment { enabled: true, factor: 2.0, maxtime: Some(604800), multipliers: vec![1.0, 5.0, 30.0] }
    );
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    // action_mwl: a mail with whois and the matched lines on each ban.
    assert_eq!(
        j.mail,
        Some(MailConfig {
            kind: MailKind::WhoisLines,
            dest: "root@localhost".into(),
            sender: "root@<fq-hostname>".into(),
            sendername: "Fail2Ban".into()
        })
    );
    assert!(!w.iter().any(|x| x.contains("`action`") || x.contains("`destemail`") || x.contains("`mta`")), "{w:?}");
    assert!(!w.iter().any(|x| x.contains("my_port")), "{w:?}");
    assert!(w.iter().any(|x| x.contains("[apache-auth] is enabled")), "{w:?}");
    assert!(w.iter().any(|x| x.contains("[nginx-http-auth] is not supported")), "{w:?}");
}

#[test]
fn bad_values_name_file_line_key() {
    let (f, l, k, _) = err("[sshd]\nenabled = true\nmaxretry = five\n");
    assert_eq!((f.as_str(), l, k.as_str()), ("jail.local", 3, "maxretry"));
    let (_, line, key, msg) = err("[DEFAULT]\nbantime = 10x\n[sshd]\nenabled=true\n");
    assert_eq!((line, key.as_str()), (2, "bantime"));
    assert!(msg.contains("10x"), "{msg}");
    let (_, line, key, _) = err("[sshd]\n\nignoreip = 127.0.0.1/8 not-an-ip\n");
    assert_eq!((line, key.as_str()), (3, "ignoreip"));
    assert_eq!(err("[sshd]\nbanaction = ufw\n").2, "banaction");
    assert_eq!(err("[sshd]\nport = nosuch\n").2, "port");
    assert_eq!(err("[sshd]\nmode = silly\n").2, "mode");
    assert_eq!(err("[sshd]\nusedns = maybe\n").2, "usedns");
    assert_eq!(err("[sshd]\nenabled = maybe\n").2, "enabled");
    assert_eq!(err("[sshd]\nport = %(undefined_var)s\n").2, "port");
    let e = parse_str("[sshd]\nmaxretry = five\n", "jail.local").unwrap_err().to_string();
    assert_eq!(e, "jail.local:2: maxretry: \"five\" is not a positive integer");
    assert!(matches!(parse_str("novalue\n", "f"), Err(ConfigError::Syntax { line: 1, .. })));
}

#[test]
fn multiline_and_later_file_overrides() {
    let c = parse_many(&[
        ("jail.conf", "[DEFAULT]\nbantime = 10m\n[sshd]\nport = ssh\nlogpath = /var/log/a.log\n    /var/log/b.log\n"),
        ("jail.local", "[sshd]\nenabled = true\nbantime = -1\n"),
    ])
    .unwrap();
    assert!(c.jail.enabled);
    assert_eq!(c.jail.bantime, -1);
    assert_eq!(c.jail.logpath, vec![PathBuf::from("/var/log/a.log"), PathBuf::from("/var/log/b.log")]);
}

#[test]
fn interpolation_bombs_are_bounded_with_file_and_line() {
    // Each level doubles 16 times: unbounded this is 16^8 copies of the leaf.
    let mut text = String::from("[DEFAULT]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for w in names.windows(2) {
        text.push_str(&format!("{} = {}\n", w[0], format!("%({})s", w[1]).repeat(16)));
    }
    text.push_str("h = xxxxxxxxxxxxxxxx\n[sshd]\nenabled = true\nport = %(a)s\n");
    assert!(text.len() < 1024, "{}", text.len());
    let (f, l, k, m) = err(&text);
    assert_eq!((f.as_str(), l, k.as_str()), ("jail.local", 12, "port"));
    assert!(m.contains("interpolation"), "{m}");
    // Empty leaves: nothing grows, but the work would; the substitution budget stops it.
    let text = text.replace("h = xxxxxxxxxxxxxxxx", "h =");
    let (_, l, _, m) = err(&text);
    assert_eq!(l, 12);
    assert!(m.contains("substitutions"), "{m}");
    // Self reference.
    let (_, l, k, m) = err("[sshd]\nenabled = true\nport = %(port)s\n");
    assert_eq!((l, k.as_str()), (3, "port"));
    assert!(m.contains("levels deep"), "{m}");
}

#[test]
fn mail_actions_like_fail2ban() {
    // Debian's jail.conf spelling of action_mwl, with parameters.
    let text = r#"[DEFAULT]
destemail = admin@example.org
sender = guard@<fq-hostname>
mta = sendmail
protocol = tcp
action_ = %(banaction)s[port="%(port)s", protocol="%(protocol)s", chain="%(chain)s"]
action_mwl = %(action_)s
             %(mta)s-whois-lines[sender="%(sender)s", dest="%(destemail)s", logpath="%(logpath)s", chain="%(chain)s"]
action = %(action_mwl)s
[sshd]
enabled = true
"#;
    let c = parse_str(text, "jail.local").unwrap();
    let m = c.jail.mail.unwrap();
    assert_eq!(
        (m.kind, m.dest.as_str(), m.sender.as_str()),
        (MailKind::WhoisLines, "admin@example.org", "guard@<fq-hostname>")
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = parse_str("[sshd]\nenabled = true\naction = mail[dest=a@b]\n", "j").unwrap();
    assert_eq!(c.jail.mail.unwrap().dest, "a@b");
    assert!(parse_str("[sshd]\nenabled = true\n", "j").unwrap().jail.mail.is_none());
    // Header values are checked: no way to smuggle a header through the configuration.
    let (_, l, k, _) = err("[sshd]\naction = mail-whois\ndestemail = a@b\tBcc: c@d\n");
    assert_eq!((l, k.as_str()), (3, "destemail"));
    assert_eq!(err("[sshd]\naction = mail[dest=\"x\"]\n").2, "action");
    assert_eq!(err("[sshd]\nmta = postfix\n").2, "mta");
    let w = parse_str("[sshd]\naction = %(action_)s\n         xarf-login-attack\n", "j").unwrap().warnings;
    assert!(w[0].message.contains("action `xarf-login-attack` is not implemented"), "{w:?}");
}
