//! The main job on a built-in sample: a scripted login session (login UID 7005, uid 7005)
//! traced in the kernel, then the per-UID report a sysadmin would ask for; then the same
//! kind of session under Debian's STIG audit rules, evaluated in the kernel.

use std::process::Command;

use crate::util::{check, workspace};

pub(crate) fn run() -> anyhow::Result<()> {
    anyhow::ensure!(crate::util::is_root(), "the tracer loads eBPF programs: run the demo as root");
    let ws = workspace();
    let tracer = ws.join("target/release/tracer");
    let workload = ws.join("target/release/workload");
    let dir = std::env::temp_dir().join(format!("tracer-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "demo\n")?;
    eprintln!(
        "demo: a login session of UID 7005 (loginuid set as pam_loginuid would) reads files, runs commands and tries the network"
    );
    let r = check(
        Command::new(&tracer)
            .args(["report", "--auid", "7005", "--"])
            .arg(&workload)
            .args(["--loginuid", "7005", "--ids", "7005:7005"])
            .arg(format!("open-n:3:{}", notes.display()))
            .args([
                "open:/etc/passwd",
                "open:/etc/shadow",
                "exec-n:2:/usr/bin/id",
                "connect-n:4:127.0.0.1:9",
                "--",
                "/bin/uname",
                "-m",
            ]),
    );
    // The same kind of session under Debian's STIG rules, unchanged, evaluated in the kernel:
    // only the calls the rules select come out, with the rule's key.
    let stig = "/usr/share/doc/auditd/examples/rules/30-stig.rules";
    eprintln!("\ndemo: the session again, under {stig} (`trace --rules`): only what the rules select, keyed");
    let r = r.and_then(|()| {
        check(
            Command::new(&tracer)
                .args(["trace", "--rules", stig, "--format", "text", "--"])
                .arg(&workload)
                .args(["--loginuid", "7005", "--ids", "7005:7005", "open:/etc/shadow"])
                // chmod(notes, 0600) of root's file and settimeofday(NULL, NULL) as the user:
                // refused, logged.
                .arg(format!("call:90,s={},384", notes.display()))
                .args(["call:164,0,0", "exec-n:1:/usr/bin/id"]),
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    r
}
