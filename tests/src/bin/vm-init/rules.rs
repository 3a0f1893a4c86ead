//! Debian's STIG rule set (`/etc/30-stig.rules`, put in the initramfs by `cargo xtask vm-test`
//! from the host's auditd package) evaluated by the guest kernel: `tracer trace --rules` over
//! `/init stig-session`, a login of uid 7005 that trips some of its rules once each.

use std::{collections::BTreeMap, ffi::CString};

use serde_json::Value;
use tracer_tests::parse_json_lines;

use super::{Checks, run};

const STIG: &str = "/etc/30-stig.rules";
const OUT: &str = "/tmp/stig.json";
const DIR: &str = "/tmp/stig";
const UID: u32 = 7005;

/// Events each key must have: what `session` does, once per call.
const WANT: [(&str, u64); 5] =
    [("perm_mod", 1), ("delete", 2), ("access", 1), ("system-locale", 1), ("time-change", 1)];

/// `/init stig-session`: sets the login UID, becomes the user, and trips the rules. Never returns.
pub(crate) fn session() -> ! {
    let c = |s: &str| CString::new(s).unwrap();
    let f = c(&format!("{DIR}/mine"));
    let g = c(&format!("{DIR}/mine2"));
    let secret = c("/tmp/secret");
    let ok = std::fs::write("/proc/self/loginuid", UID.to_string()).is_ok()
        // SAFETY: plain id changes of this process.
        && unsafe { libc::setgid(UID) | libc::setuid(UID) } == 0
        && std::fs::write(format!("{DIR}/mine"), "x").is_ok();
    if !ok {
        eprintln!("vm-init stig-session: setup: {}", std::io::Error::last_os_error());
        std::process::exit(3);
    }
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: NUL-terminated strings and a timespec that outlive the calls; results are
    // ignored on purpose: refused calls (EACCES, EPERM) are what the rules log.
    unsafe {
        libc::chmod(f.as_ptr(), 0o600); // perm_mod
        libc::rename(f.as_ptr(), g.as_ptr()); // delete
        libc::unlink(g.as_ptr()); // delete
        libc::open(secret.as_ptr(), libc::O_RDONLY); // access (EACCES)
        libc::sethostname(c"x".as_ptr(), 1); // system-locale (EPERM)
        libc::clock_settime(libc::CLOCK_REALTIME, &ts); // time-change (EPERM, a0 = 0)
    }
    std::process::exit(0)
}

pub(crate) fn checks(c: &mut Checks) -> Result<(), String> {
    c.check("the STIG rules are in the guest", std::path::Path::new(STIG).exists(), || {
        format!("{STIG} missing: the host's auditd package ships /usr/share/doc/auditd/examples/rules/30-stig.rules")
    });
    std::fs::create_dir_all(DIR).map_err(|e| format!("{DIR}: {e}"))?;
    std::fs::set_permissions(DIR, std::os::unix::fs::PermissionsExt::from_mode(0o777)).map_err(|e| format!("{e}"))?;
    let out = run(&["trace", "--rules", STIG, "--format", "json", "--output", OUT, "--", "/init", "stig-session"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    c.check("trace --rules STIG exit status", out.status.success(), || format!("{}: {stderr}", out.status));
    c.check("trace --rules STIG: nothing lost", stderr.contains(" 0 lost"), || stderr.to_string());
    let events = parse_json_lines(&std::fs::read(OUT).unwrap_or_default());
    let mut keys: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["auid"] == UID) {
        match &e["key"] {
            Value::String(k) => *keys.entry(k.clone()).or_default() += 1,
            Value::Array(ks) => {
                ks.iter().filter_map(Value::as_str).for_each(|k| *keys.entry(k.into()).or_default() += 1)
            }
            _ => {}
        }
    }
    for (key, n) in WANT {
        c.check(&format!("STIG key {key}: {n} event(s)"), keys.get(key) == Some(&n), || format!("{keys:?}"));
    }
    let others: Vec<_> = keys.keys().filter(|k| !WANT.iter().any(|(w, _)| w == k)).collect();
    c.check("STIG: no other key", others.is_empty(), || format!("{keys:?}"));
    Ok(())
}
