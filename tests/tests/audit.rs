//! `tracer trace --format audit` end to end: the real programs trace the `workload`, and
//! the stock ausearch/aureport (Debian's `auditd` package, installed here if missing) must
//! parse the output without complaint and count exactly what the workload did.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    ffi::OsString,
    net::TcpListener,
    os::unix::{ffi::OsStrExt, net::UnixListener},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use tracer_tests::*;

const W: &str = env!("CARGO_BIN_EXE_workload");

fn as_7005(ops: &[&[u8]]) -> Vec<OsString> {
    let mut args: Vec<&[u8]> = vec![b"--loginuid", b"7005", b"--ids", b"7005:7005"];
    args.extend_from_slice(ops);
    workload_cmd(W, &args)
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// ausearch and aureport, from Debian's `auditd` package; installed once if missing.
fn tool(name: &str) -> PathBuf {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if find_tool("ausearch").is_some() && find_tool("aureport").is_some() {
            return;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let install = ["install", "-y", "-q", "--no-install-recommends", "auditd"];
        if !apt(&install) {
            apt(&["update", "-q"]);
            assert!(apt(&install), "cannot install Debian's auditd package (ausearch, aureport)");
        }
    });
    find_tool(name).unwrap_or_else(|| panic!("{name} missing after installing auditd"))
}

struct AuditRun {
    _dir: TempDir,
    log: PathBuf,
    raw: Vec<u8>,
    output: Output,
}

impl AuditRun {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn syscalls(&self) -> Vec<&[u8]> {
        self.raw.split(|&b| b == b'\n').filter(|l| l.starts_with(b"type=SYSCALL ")).collect()
    }
}

/// `tracer trace --format audit --output FILE ARGS... -- CMD...`
fn trace_audit(args: &[&str], cmd: &[OsString]) -> AuditRun {
    let dir = TempDir::new("audit");
    let log = dir.path().join("audit.log");
    let output = Command::new(tracer_bin())
        .args(["trace", "--format", "audit", "--output"])
        .arg(&log)
        .args(args)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run tracer");
    let raw = std::fs::read(&log).unwrap_or_default();
    let run = AuditRun { _dir: dir, log, raw, output };
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.stderr().contains(" 0 lost, 0 undecodable"), "{}", run.stderr());
    run
}

/// Runs an audit tool that must succeed quietly and find something.
fn audit_tool(name: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = Command::new(tool(name)).args(args).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{name} {args:?}: {}\n{err}", out.status);
    assert!(!contains(&out.stdout, b"<no matches>"), "{name} {args:?} found nothing");
    out.stdout
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// ausearch prints `----` before each event.
fn events(ausearch_out: &[u8]) -> usize {
    ausearch_out.split(|&b| b == b'\n').filter(|l| *l == b"----").count()
}

fn lines(out: &[u8]) -> Vec<&[u8]> {
    out.split(|&b| b == b'\n').collect()
}

/// The count aureport's `--summary` gives for `item` ("  12  /usr/bin/true").
fn summary_count(out: &[u8], item: &str) -> u64 {
    let text = String::from_utf8_lossy(out);
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let n = f.next()?.parse().ok()?;
            (f.next()? == item).then_some(n)
        })
        .unwrap_or_else(|| panic!("{item} not in summary:\n{text}"))
}

#[test]
fn ausearch_and_aureport_count_what_the_workload_did() {
    let dir = TempDir::new("audit-counts");
    let file = dir.path().join("target-file");
    std::fs::write(&file, "x").unwrap();
    let missing = dir.path().join("missing");
    let (fb, mb) = (file.as_os_str().as_bytes(), missing.as_os_str().as_bytes());
    let t = trace_audit(
        &["--auid", "7005", "--key", "counts-key"],
        &as_7005(&[
            &[b"open-n:40:".as_slice(), fb].concat(),
            &[b"open-n:7:".as_slice(), mb].concat(),
            b"exec-n:12:/bin/true",
            b"connect-n:5:127.0.0.1:9",
            b"--",
            b"/nonexistent/prog",
            b"arg",
        ]),
    );
    let log = t.log.as_os_str();
    let all = t.syscalls().len();
    assert!(all > 40 + 7 + 12 + 5, "{all} events");
    assert!(t.syscalls().iter().all(|l| contains(l, b" auid=7005 ") && l.ends_with(b" key=\"counts-key\"")));

    // Every event is login UID 7005's: ausearch finds them all, and names it without a
    // passwd entry as unknown(7005).
    let out = audit_tool("ausearch", &[os("-if"), log, os("--uid-all"), os("7005"), os("-i")]);
    assert_eq!(events(&out), all);
    assert!(contains(&out, b" auid=unknown(7005) uid=unknown(7005) "));
    let out = audit_tool("ausearch", &[os("-if"), log, os("-k"), os("counts-key")]);
    assert_eq!(events(&out), all, "every SYSCALL record carries the key");
    let miss = Command::new(tool("ausearch")).args([os("-if"), log, os("-k"), os("other-key")]).output().unwrap();
    assert_eq!(miss.status.code(), Some(1), "a key nobody used matches nothing");

    // Executables: every event of /bin/true's image, and exactly the 12 execs of it.
    let true_exe = std::fs::canonicalize("/bin/true").unwrap();
    let true_exe = true_exe.to_str().unwrap();
    let out = audit_tool("aureport", &[os("-if"), log, os("-x"), os("--summary")]);
    let of_true = t.syscalls().iter().filter(|l| contains(l, format!(" exe=\"{true_exe}\" ").as_bytes())).count();
    assert_eq!(summary_count(&out, true_exe), of_true as u64);
    let execs =
        Command::new(tool("ausearch")).args([os("-if"), log, os("-sc"), os("execve"), os("--raw")]).output().unwrap();
    assert!(execs.status.success());
    let mut report = Command::new(tool("aureport"))
        .args(["-x", "--summary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut report.stdin.take().unwrap(), &execs.stdout).unwrap();
    let out = report.wait_with_output().unwrap();
    assert_eq!(summary_count(&out.stdout, true_exe), 12, "{}", String::from_utf8_lossy(&out.stdout));

    // Files: 40 successful opens of the file, 7 failed ones of the missing name, the 12
    // execs of /bin/true and the failed exec.
    let out = audit_tool("aureport", &[os("-if"), log, os("-f"), os("-i")]);
    let count = |name: &[u8], rest: &[u8]| {
        let needle = [b" ".as_slice(), name, b" ", rest, b" "].concat();
        lines(&out).iter().filter(|l| contains(l, &needle)).count()
    };
    assert_eq!(count(fb, b"openat yes"), 40, "{}", String::from_utf8_lossy(&out));
    assert_eq!(count(mb, b"openat no"), 7);
    assert_eq!(count(mb, b"openat yes"), 0);
    assert_eq!(count(b"/bin/true", b"execve yes"), 12);
    assert_eq!(count(b"/nonexistent/prog", b"execve no"), 1);

    // Failures are marked: errno names, and the failed exec's arguments are there.
    let out = audit_tool("ausearch", &[os("-if"), log, os("-sc"), os("execve"), os("-sv"), os("no"), os("-i")]);
    assert_eq!(events(&out), 1);
    assert!(contains(&out, b"success=no exit=ENOENT(No such file or directory)"));
    assert!(contains(&out, b"argc=2 a0=/nonexistent/prog a1=arg"));
    let out = audit_tool("ausearch", &[os("-if"), log, os("-sc"), os("connect"), os("-i")]);
    assert_eq!(events(&out), 5);
    assert_eq!(
        lines(&out).iter().filter(|l| contains(l, b"saddr={ saddr_fam=inet laddr=127.0.0.1 lport=9 }")).count(),
        5
    );
    assert_eq!(lines(&out).iter().filter(|l| contains(l, b"exit=ECONNREFUSED(Connection refused)")).count(), 5);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02X}")).collect()
}

#[test]
fn hostile_names_are_hex_encoded_and_ausearch_decodes_them() {
    let dir = TempDir::new("audit-names");
    let names: [&[u8]; 5] = [b"with space", b"new\nline", b"quo\"te", b"bad\xff\xfeutf8", b"tab\there"];
    let paths: Vec<Vec<u8>> = names.iter().map(|n| [dir.path().as_os_str().as_bytes(), b"/", n].concat()).collect();
    let mut ops: Vec<Vec<u8>> = Vec::new();
    for p in &paths {
        std::fs::write(std::ffi::OsStr::from_bytes(p), "x").unwrap();
        ops.push([b"open:".as_slice(), p].concat());
    }
    ops.extend([
        b"--".to_vec(),
        b"/bin/echo".to_vec(),
        b"two words".to_vec(),
        b"new\nline".to_vec(),
        b"x\xffy".to_vec(),
    ]);
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let t = trace_audit(&["--auid", "7005"], &as_7005(&refs));
    let log = t.log.as_os_str();

    // Raw records: one per line whatever the name, names as hex like the kernel's.
    for p in &paths {
        let want = format!(" name={} nametype=NORMAL ", hex(p));
        assert_eq!(lines(&t.raw).iter().filter(|l| contains(l, want.as_bytes())).count(), 1, "{want}");
    }
    assert!(contains(&t.raw, b" a0=\"/bin/echo\" a1=74776F20776F726473 a2=6E65770A6C696E65 a3=78FF79\n"));

    // ausearch -i decodes the hex: control characters as octal escapes, other bytes as is.
    let out = audit_tool("ausearch", &[os("-if"), log, os("--uid-all"), os("7005"), os("-i")]);
    let d = dir.path().as_os_str().as_bytes();
    for shown in [b"with space".as_slice(), b"new\\012line", b"quo\"te", b"bad\xff\xfeutf8", b"tab\\011here"] {
        let want = [b" name=".as_slice(), d, b"/", shown, b" nametype=NORMAL "].concat();
        assert!(contains(&out, &want), "{}", String::from_utf8_lossy(&want));
    }
    assert!(contains(&out, b"argc=4 a0=/bin/echo a1=two words a2=new\\012line a3=x\xffy"));

    // aureport lists each file once; ausearch -f finds a name holding a space or newline.
    let out = audit_tool("aureport", &[os("-if"), log, os("-f"), os("-i")]);
    for shown in [b"with space".as_slice(), b"new\\012line", b"quo\"te", b"bad\xff\xfeutf8", b"tab\\011here"] {
        let want = [b" ".as_slice(), d, b"/", shown, b" openat yes "].concat();
        assert_eq!(lines(&out).iter().filter(|l| contains(l, &want)).count(), 1, "{}", String::from_utf8_lossy(&want));
    }
    for p in &paths[..2] {
        let out = audit_tool("ausearch", &[os("-if"), log, os("-f"), std::ffi::OsStr::from_bytes(p)]);
        assert_eq!(events(&out), 1, "{}", String::from_utf8_lossy(p));
    }
}

/// Each `aN[i]=` chunk of argument N, in order, after its `aN_len=`.
fn chunks(records: &[&[u8]], n: usize) -> (usize, Vec<Vec<u8>>) {
    let fields: Vec<&[u8]> = records.iter().flat_map(|r| r.split(|&b| b == b' ')).collect();
    let field = |prefix: &str| fields.iter().find_map(|f| f.strip_prefix(prefix.as_bytes())).map(<[u8]>::to_vec);
    let len = field(&format!("a{n}_len=")).map(|v| String::from_utf8(v).unwrap().parse().unwrap()).expect("aN_len");
    let parts = (0..).map_while(|i| field(&format!("a{n}[{i}]="))).collect();
    (len, parts)
}

fn unhex(h: &[u8]) -> Vec<u8> {
    h.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()).collect()
}

#[test]
fn long_arguments_are_split_into_chunks_like_the_kernel() {
    let big = vec![b'y'; 10_000];
    let t = trace_audit(&[], &workload_cmd(W, &[b"--", b"/bin/echo", &big, b"end"]));
    let stamp = lines(&t.raw)
        .iter()
        .find(|l| l.starts_with(b"type=EXECVE ") && contains(l, b" a0=\"/bin/echo\" "))
        .map(|l| l[..l.iter().position(|&b| b == b')').unwrap() + 1].to_vec())
        .expect("EXECVE of echo");
    let stamp = &stamp[b"type=EXECVE ".len()..];
    let records: Vec<&[u8]> =
        lines(&t.raw).into_iter().filter(|l| l.starts_with(b"type=EXECVE ") && contains(l, stamp)).collect();
    assert_eq!(records.len(), 3, "20,000 hex digits take 3 records of at most 7,500");
    assert!(records.iter().all(|r| r.len() < 7600));
    assert!(contains(records[0], b" argc=3 a0=\"/bin/echo\" a1_len=20000 a1[0]="));
    let (len, parts) = chunks(&records, 1);
    assert_eq!(len, 20_000);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts.iter().flat_map(|p| unhex(p)).collect::<Vec<u8>>(), big);
    assert!(records[2].ends_with(b" a2=\"end\""));
    // PROCTITLE: the first 128 bytes of the command line, hex (it holds NULs).
    let title = lines(&t.raw).into_iter().find(|l| l.starts_with(b"type=PROCTITLE ") && contains(l, stamp)).unwrap();
    let value = &title[title.windows(10).position(|w| w == b"proctitle=").unwrap() + 10..];
    assert_eq!(unhex(value), [b"/bin/echo\0".as_slice(), &big[..118]].concat());
    // ausearch reads the split records and decodes each chunk.
    let out = audit_tool("ausearch", &[os("-if"), t.log.as_os_str(), os("-sc"), os("execve"), os("-i")]);
    assert!(contains(&out, b" a1_len=20000 a1[0]=yyyy"));
    assert!(contains(&out, b" a1[2]=yyyy"));
}

#[test]
fn sockaddr_records_for_inet6_unix_and_abstract_peers() {
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let port = v6.local_addr().unwrap().port();
    let dir = TempDir::new("audit-unix");
    let sock = dir.path().join("s.sock");
    let _ul = UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let ops = [
        format!("connect:[::1]:{port}").into_bytes(),
        [b"unix:".as_slice(), sock.as_os_str().as_bytes()].concat(),
        b"abstract:tracer-audit-abs".to_vec(),
    ];
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let t = trace_audit(&["--auid", "7005"], &as_7005(&refs));
    let want_raw = format!("saddr=0A00{port:04X}00000000{}00000000\n", hex(&std::net::Ipv6Addr::LOCALHOST.octets()));
    assert!(contains(&t.raw, want_raw.as_bytes()), "{want_raw}");
    assert!(contains(&t.raw, format!("saddr=0100{}00\n", hex(sock.as_os_str().as_bytes())).as_bytes()));
    assert!(contains(&t.raw, format!("saddr=010000{}\n", hex(b"tracer-audit-abs")).as_bytes()));
    let out = audit_tool("ausearch", &[os("-if"), t.log.as_os_str(), os("-sc"), os("connect"), os("-i")]);
    assert_eq!(events(&out), 3);
    assert!(contains(&out, format!("saddr={{ saddr_fam=inet6 laddr=::1 lport={port} }}").as_bytes()));
    assert!(contains(
        &out,
        [b"saddr={ saddr_fam=local path=".as_slice(), sock.as_os_str().as_bytes(), b" }"].concat().as_slice()
    ));
    assert!(contains(&out, b"saddr={ saddr_fam=local path=tracer-audit-abs }"));
    assert!(contains(&out, b"exit=ECONNREFUSED"), "nobody listens on the abstract name");
    drop(v6);
}

#[test]
fn bad_keys_exit_2_with_a_clear_error() {
    let long = "k".repeat(257);
    for (key, why) in [
        ("with space", "not allowed"),
        ("quo\"te", "not allowed"),
        ("", "1 to 256 bytes"),
        (long.as_str(), "1 to 256 bytes"),
    ] {
        let out = Command::new(tracer_bin())
            .args(["trace", "--format", "audit", "--key", key, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--key") && err.contains(why), "{key:?}: {err}");
    }
    let out =
        Command::new(tracer_bin()).args(["trace", "--format", "json", "--key", "k", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key only applies to --format audit"));
}

#[test]
fn relative_opens_carry_the_cwd_and_dirfd_opens_the_resolved_name() {
    let dir = TempDir::new("audit-rel");
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/f"), "x").unwrap();
    let d = dir.path().as_os_str().as_bytes();
    let t = trace_audit(
        &["--auid", "7005"],
        &as_7005(&[
            &[b"chdir:".as_slice(), d].concat(),
            b"open:sub/./f",
            &[b"openat:".as_slice(), d, b"/sub:f"].concat(),
            b"open:/etc/hostname",
        ]),
    );
    let l = lines(&t.raw);
    let cwd = [b"cwd=\"".as_slice(), d, b"\""].concat();
    let i = l
        .iter()
        .position(|r| r.starts_with(b"type=PATH ") && contains(r, b" name=\"sub/./f\" nametype=NORMAL "))
        .expect("relative PATH");
    assert!(l[i - 1].starts_with(b"type=CWD ") && l[i - 1].ends_with(&cwd), "{}", String::from_utf8_lossy(l[i - 1]));
    let resolved = [b" name=\"".as_slice(), d, b"/sub/f\" nametype=NORMAL "].concat();
    let j = l.iter().position(|r| r.starts_with(b"type=PATH ") && contains(r, &resolved)).expect("dirfd PATH");
    assert!(
        l[j - 1].starts_with(b"type=SYSCALL ") && contains(l[j - 1], b" syscall=257 success=yes "),
        "no CWD for a dirfd-relative name"
    );
    // An absolute name has its CWD record too, as audit writes one with every path.
    let k = l
        .iter()
        .position(|r| r.starts_with(b"type=PATH ") && contains(r, b" name=\"/etc/hostname\" "))
        .expect("absolute PATH");
    assert!(l[k - 1].starts_with(b"type=CWD ") && l[k - 1].ends_with(&cwd), "{}", String::from_utf8_lossy(l[k - 1]));
    let out = audit_tool("aureport", &[os("-if"), t.log.as_os_str(), os("-f"), os("-i")]);
    assert!(contains(&out, b" sub/./f openat yes "));
    assert!(contains(&out, &[b" ".as_slice(), d, b"/sub/f openat yes "].concat()));
}
