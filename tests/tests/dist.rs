//! What ships beside the binary: the systemd units and the default configuration.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use tracer_tests::*;

fn dist(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist").join(name)
}

/// `systemd-analyze verify` on both units as shipped, with ExecStart pointed at the built
/// binary (verify requires the executable to exist) and no man page lookup.
#[test]
fn systemd_units_verify() {
    let dir = TempDir::new("units");
    let bin = tracer_bin().canonicalize().unwrap();
    for unit in ["tracer.service", "tracer-guard.service"] {
        let text = std::fs::read_to_string(dist(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/sbin/tracer ") && text.contains("ExecReload=/bin/kill -HUP $MAINPID"));
        let local = text.replace("/usr/sbin/tracer", bin.to_str().unwrap());
        let path = dir.file(unit);
        std::fs::write(&path, local).unwrap();
        let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "{unit}: {err}");
    }
}

/// Every line of the shipped configuration is accepted: with one bad key appended, the
/// daemon's only complaint is that key, on the last line (the log is moved into a temp dir).
#[test]
fn default_configuration_is_accepted() {
    let dir = TempDir::new("defconf");
    let text = std::fs::read_to_string(dist("tracer.conf")).unwrap();
    let log = dir.file("tracer.log");
    let conf = dir.file("tracer.conf");
    std::fs::write(&conf, text.replace("/var/log/tracer/tracer.log", log.to_str().unwrap())).unwrap();
    // A bad key next to the shipped ones is refused with its line: the parser checks them all.
    std::fs::write(dir.file("bad.conf"), format!("{}\nbogus = 1\n", std::fs::read_to_string(&conf).unwrap())).unwrap();
    let out = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(dir.file("bad.conf")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus: unknown key"));
    assert!(!log.exists());
}

/// `cargo xtask deb` (packaging the tested binary) builds a package that `dpkg -i` installs
/// (binary, units that verify in place, man pages, completions, configuration), `dpkg -r`
/// removes (the configuration stays, as a conffile) and `dpkg -P` purges without a trace.
#[test]
fn deb_installs_and_removes_cleanly() {
    let files = [
        "/usr/sbin/tracer",
        "/usr/lib/systemd/system/tracer.service",
        "/usr/lib/systemd/system/tracer-guard.service",
        "/usr/share/man/man1/tracer.1",
        "/usr/share/man/man1/tracer-daemon.1",
        "/usr/share/bash-completion/completions/tracer",
        "/usr/share/zsh/vendor-completions/_tracer",
        "/usr/share/fish/vendor_completions.d/tracer.fish",
    ];
    let dpkg = |args: &[&str]| {
        let out = Command::new("dpkg").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert!(!dpkg(&["-s", "tracer"]).0 && !Path::new(files[0]).exists(), "this machine already has a tracer installed");
    let dir = TempDir::new("deb");
    let out = Command::new(env!("CARGO"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["xtask", "deb", "--bin"])
        .arg(tracer_bin())
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deb = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");

    let (ok, msg) = dpkg(&["-i", &deb]);
    assert!(ok, "{msg}");
    for f in files {
        assert!(Path::new(f).exists(), "{f} installed");
    }
    let v = Command::new("/usr/sbin/tracer").arg("--version").output().unwrap();
    assert!(v.status.success() && String::from_utf8_lossy(&v.stdout).starts_with("tracer "));
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "/usr/lib/systemd/system/tracer.service"])
        .arg("/usr/lib/systemd/system/tracer-guard.service")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&verify.stderr);
    let ok_verify = verify.status.success() && err.trim().is_empty();
    let conf = std::fs::metadata("/etc/tracer/tracer.conf").map(|m| m.permissions().mode() & 0o777);

    let (removed, msg) = dpkg(&["-r", "tracer"]);
    let left: Vec<&str> = files.into_iter().filter(|f| Path::new(f).exists()).collect();
    let conf_kept = Path::new("/etc/tracer/tracer.conf").exists();
    let (purged, pmsg) = dpkg(&["-P", "tracer"]);
    // Asserted after the purge, so a failure leaves the machine as it was.
    assert!(ok_verify, "installed units: {err}");
    assert_eq!(conf.ok(), Some(0o600), "the configuration is root's only");
    assert!(removed, "{msg}");
    assert!(left.is_empty(), "dpkg -r left {left:?}");
    assert!(conf_kept, "dpkg -r keeps the configuration (a conffile)");
    assert!(purged, "{pmsg}");
    assert!(!Path::new("/etc/tracer").exists(), "dpkg -P removes /etc/tracer");
    assert!(!dpkg(&["-s", "tracer"]).0);
}

/// `cargo xtask install` honours DESTDIR and PREFIX: everything lands under DESTDIR, the
/// units start PREFIX/sbin/tracer, an existing configuration is left alone.
#[test]
fn install_honours_destdir_and_prefix() {
    let dir = TempDir::new("install");
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc/tracer")).unwrap();
    std::fs::write(root.join("etc/tracer/tracer.conf"), "log_format = json\n").unwrap();
    let out = Command::new(env!("CARGO"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["xtask", "install", "--bin"])
        .arg(tracer_bin())
        .env("DESTDIR", root)
        .env("PREFIX", "/opt/tr")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "opt/tr/sbin/tracer",
        "opt/tr/share/man/man1/tracer-status.1",
        "opt/tr/share/bash-completion/completions/tracer",
    ] {
        assert!(root.join(f).exists(), "{f}");
    }
    let unit = std::fs::read_to_string(root.join("opt/tr/lib/systemd/system/tracer.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/tr/sbin/tracer daemon"), "{unit}");
    assert_eq!(std::fs::read_to_string(root.join("etc/tracer/tracer.conf")).unwrap(), "log_format = json\n");
    assert!(root.join("etc/tracer/rules.d").is_dir());
}
