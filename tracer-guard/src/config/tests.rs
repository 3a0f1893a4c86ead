use super::*;

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
    for want in
        ["jail.local:9: `action`", "jail.local:10: `destemail`", "jail.local:11: `sendername`", "jail.local:12: `mta`"]
    {
        assert!(w.iter().any(|x| x.starts_with(want)), "missing {want} in {w:?}");
    }
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
