//! `cargo xtask syscall-names`: regenerates `tracer-rules/src/syscalls/table.rs` from the installed
//! audit's own tables (`ausyscall --dump`, `ausyscall i386 --dump`), so the report names
//! every call exactly as audit prints it; never a hand-typed list.

use std::{fmt::Write, process::Command};

use anyhow::{Context, bail};

const OUT: &str = "tracer-rules/src/syscalls/table.rs";

/// Names by number ("" for gaps); the first name of a number wins, as in `ausyscall`.
fn table(arch: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("ausyscall").args([arch, "--dump"]).output().context("run ausyscall (auditd)")?;
    if !out.status.success() {
        bail!("ausyscall {arch} --dump failed");
    }
    let mut names: Vec<String> = Vec::new();
    for line in String::from_utf8(out.stdout)?.lines().skip(1) {
        let (nr, name) = line.split_once('\t').with_context(|| format!("ausyscall line {line:?}"))?;
        let nr: usize = nr.parse().with_context(|| format!("ausyscall line {line:?}"))?;
        if names.len() <= nr {
            names.resize(nr + 1, String::new());
        }
        if names[nr].is_empty() {
            names[nr] = name.to_string();
        }
    }
    Ok(names)
}

fn emit(src: &mut String, name: &str, t: &[String]) {
    let _ = writeln!(src, "pub(super) static {name}: [&str; {}] = [", t.len());
    for row in t.chunks(6) {
        let cells: Vec<String> = row.iter().map(|n| format!("\"{n}\",")).collect();
        let _ = writeln!(src, "    {}", cells.join(" "));
    }
    src.push_str("];\n");
}

pub(crate) fn run() -> anyhow::Result<()> {
    let ver = Command::new("dpkg-query").args(["-W", "-f=${Version}", "auditd"]).output()?.stdout;
    let mut src = format!(
        "//! Syscall names as audit prints them (`ausyscall`, `ausearch -i`), indexed by number; \"\"\n\
         //! where the table has a gap. GENERATED from Debian auditd {} by\n\
         //! `cargo xtask syscall-names` (`ausyscall --dump`, `ausyscall i386 --dump`): do not edit.\n\n\
         /// x86_64 (audit's `arch=x86_64`, `b64`).\n",
        String::from_utf8_lossy(&ver)
    );
    emit(&mut src, "X86_64", &table("x86_64")?);
    src.push_str("\n/// i386 (audit's `arch=i386`, `b32`): 32-bit calls of a 64-bit kernel.\n");
    emit(&mut src, "I386", &table("i386")?);
    std::fs::write(OUT, src).with_context(|| format!("write {OUT}"))?;
    println!("wrote {OUT}");
    Ok(())
}
