//! A scripted process for the tests and benchmarks to trace: it sets its login UID and
//! drops privileges if asked, then performs the operations given as arguments, in order.
//!
//! workload [--loginuid N] [--ids UID:GID] OP... [-- PROG ARGS...]
//!   open:PATH            open O_RDONLY and close (failures are fine: they are the point)
//!   open-n:N:PATH        the same N times
//!   create:PATH          creat(2) and close
//!   openat:DIR:NAME      open DIR, then openat(dirfd, NAME)
//!   openat2:NAME         openat2(AT_FDCWD, NAME)
//!   chdir:DIR
//!   exec-n:N:PROG        fork + exec PROG (no arguments) N times, waiting for each
//!   execveat-n:N:PROG    the same with execveat(2)
//!   signals:N            catch N SIGUSR1 sent to itself (N rt_sigreturn calls)
//!   connect:ADDR         TCP connect to 127.0.0.1:9 or [::1]:80 style ADDR
//!   connect-n:N:ADDR
//!   unix:PATH            connect an AF_UNIX stream socket to PATH
//!   abstract:NAME        the same, abstract name
//!   stderr:TEXT          write TEXT and a newline to fd 2 in one write(2) (as `sshd -e` logs)
//!   sleep:MS
//!   call:NR,ARG...       the raw syscall NR with up to six arguments, each a number (decimal,
//!                        -N, or 0xHEX), 's=TEXT' (a NUL-terminated copy: a pointer to it), or
//!                        'b=HEX' (a pointer to those bytes); the result is ignored
//!   ptrace-child:REQ...  fork a child that asks to be traced and stops, then ptrace(REQ, child,
//!                        ADDR, 0) for each comma-separated request, then kill it
//!   -- PROG ARGS...      fork + exec PROG with ARGS (bytes as given), wait
//! Prints `workload: start_ns=WALL elapsed_ns=N cpu_ns=C` on stderr at the end (WALL: when it
//! began, ns since the epoch, so a benchmark can tell how long the tracer took to attach; C:
//! CPU time of the workload and its children).
// The package's dependencies serve its library and the other binaries.
#![allow(unused_crate_dependencies)]
use std::{
    ffi::{CString, OsString},
    net::{SocketAddr, TcpStream},
    os::unix::ffi::{OsStrExt, OsStringExt},
    time::Instant,
};

fn die(msg: String) -> ! {
    eprintln!("workload: {msg}");
    std::process::exit(2)
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).unwrap_or_else(|_| die("argument holds a NUL byte".into()))
}

fn split(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b':') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b""[..]),
    }
}

fn num(b: &[u8]) -> u64 {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| die(format!("bad number {:?}", String::from_utf8_lossy(b))))
}

fn open(path: &[u8], flags: i32) {
    let p = cstr(path);
    // SAFETY: p is a NUL-terminated CString alive for the call.
    let fd = unsafe { libc::open(p.as_ptr(), flags, 0o644) };
    if fd >= 0 {
        // SAFETY: fd was just opened here and is closed once.
        unsafe { libc::close(fd) };
    }
}

/// The handler `signals` installs: returning from it is the `rt_sigreturn` being counted.
extern "C" fn on_signal(_: libc::c_int) {}

fn signals(n: u64) {
    // SAFETY: sigaction is a plain C struct (all-zero is valid); the handler is async-signal-safe (it does
    // nothing); kill and getpid have no preconditions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        for _ in 0..n {
            libc::kill(libc::getpid(), libc::SIGUSR1);
        }
    }
}

fn spawn_wait(argv: &[Vec<u8>]) {
    spawn_wait_with(argv, false);
}

fn spawn_wait_with(argv: &[Vec<u8>], at: bool) {
    let cargs: Vec<CString> = argv.iter().map(|a| cstr(a)).collect();
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the argv pointers come from CStrings alive until waitpid and the array is NULL-terminated; the
    // child only execs or _exits (async-signal-safe).
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            if at {
                libc::syscall(libc::SYS_execveat, libc::AT_FDCWD, ptrs[0], ptrs.as_ptr(), env.as_ptr(), 0);
            } else {
                libc::execve(ptrs[0], ptrs.as_ptr(), env.as_ptr());
            }
            libc::_exit(127);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
}

fn connect(addr: &[u8]) {
    let s = String::from_utf8_lossy(addr);
    let a: SocketAddr = s.parse().unwrap_or_else(|_| die(format!("bad address {s}")));
    let _ = TcpStream::connect(a);
}

fn unix_connect(path: &[u8], abstract_name: bool) {
    // SAFETY: sockaddr_un is a plain C struct (zeroed is valid); at most 100 bytes go into its 108-byte
    // sun_path; the fd is ours and closed here.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        let mut sa: libc::sockaddr_un = std::mem::zeroed();
        sa.sun_family = libc::AF_UNIX as u16;
        let start = usize::from(abstract_name);
        for (i, &b) in path.iter().take(100).enumerate() {
            sa.sun_path[start + i] = b as libc::c_char;
        }
        let len = size_of::<libc::sa_family_t>() + start + path.len().min(100) + usize::from(!abstract_name);
        libc::connect(fd, (&sa as *const libc::sockaddr_un).cast(), len as u32);
        libc::close(fd);
    }
}

/// `call:NR,ARG...`: the argument words, kept alive (strings, buffers) for the call.
fn raw_call(spec: &[u8]) {
    let spec = String::from_utf8_lossy(spec);
    let mut parts = spec.split(',');
    let nr: i64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| die(format!("bad call {spec}")));
    let mut keep: Vec<Vec<u8>> = Vec::new();
    let mut words = [0i64; 6];
    for (i, a) in parts.enumerate().take(6) {
        words[i] = if let Some(t) = a.strip_prefix("s=") {
            keep.push([t.as_bytes(), b"\0"].concat());
            keep.last().unwrap().as_ptr() as i64
        } else if let Some(h) = a.strip_prefix("b=") {
            let bytes = (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or_else(|_| die(format!("bad hex {h}"))))
                .collect();
            keep.push(bytes);
            keep.last().unwrap().as_ptr() as i64
        } else if let Some(h) = a.strip_prefix("0x") {
            i64::from_str_radix(h, 16).unwrap_or_else(|_| die(format!("bad number {a}")))
        } else {
            a.parse().unwrap_or_else(|_| die(format!("bad number {a}")))
        };
    }
    let [a0, a1, a2, a3, a4, a5] = words;
    // SAFETY: the test asks for this call on purpose; pointer arguments point into `keep`, alive until the
    // call returns; anything else is a plain number the kernel checks.
    unsafe { libc::syscall(nr, a0, a1, a2, a3, a4, a5) };
    drop(keep);
}

/// `ptrace-child:REQ...`: requests on a child of ours that asked to be traced.
fn ptrace_child(reqs: &[u8]) {
    static WORD: u64 = 0;
    let addr = &WORD as *const u64 as usize;
    // SAFETY: the child only calls async-signal-safe functions (ptrace, raise, _exit); the parent's calls take
    // plain integers; the child is killed and reaped here.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::_exit(0);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        for r in String::from_utf8_lossy(reqs).split(',') {
            let req: u32 = r.parse().unwrap_or_else(|_| die(format!("bad request {r}")));
            // glibc declares the request unsigned, musl (the vm-test build) signed.
            libc::ptrace(req as _, pid, addr, 0);
        }
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut st, 0);
    }
}

fn main() {
    let args: Vec<Vec<u8>> = std::env::args_os().skip(1).map(OsString::into_vec).collect();
    let start = Instant::now();
    let start_wall =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        match a.as_slice() {
            b"--loginuid" => {
                let v = &args[i];
                i += 1;
                std::fs::write("/proc/self/loginuid", v).unwrap_or_else(|e| die(format!("set loginuid: {e}")));
            }
            b"--ids" => {
                let (u, g) = split(&args[i]);
                i += 1;
                let (u, g) = (num(u) as u32, num(g) as u32);
                // SAFETY: setgroups(0, NULL) clears the list; setgid/setuid take plain integers.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(g) != 0 || libc::setuid(u) != 0 {
                        die(format!("drop to {u}:{g}: {}", std::io::Error::last_os_error()));
                    }
                }
            }
            b"--" => {
                spawn_wait(&args[i..]);
                break;
            }
            op => {
                let (name, rest) = split(op);
                match name {
                    b"open" => open(rest, libc::O_RDONLY),
                    b"open-n" => {
                        let (n, path) = split(rest);
                        for _ in 0..num(n) {
                            open(path, libc::O_RDONLY);
                        }
                    }
                    b"create" => {
                        let p = cstr(rest);
                        // SAFETY: p is a NUL-terminated CString alive for the call.
                        let fd = unsafe { libc::creat(p.as_ptr(), 0o644) };
                        if fd >= 0 {
                            // SAFETY: fd was just opened here and is closed once.
                            unsafe { libc::close(fd) };
                        }
                    }
                    b"openat" => {
                        let (dir, name) = split(rest);
                        let d = cstr(dir);
                        let n = cstr(name);
                        // SAFETY: d and n are NUL-terminated CStrings alive for the calls; both fds are ours
                        // and closed once.
                        unsafe {
                            let dfd = libc::open(d.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                            let fd = libc::openat(dfd, n.as_ptr(), libc::O_RDONLY);
                            if fd >= 0 {
                                libc::close(fd);
                            }
                            libc::close(dfd);
                        }
                    }
                    b"openat2" => {
                        let n = cstr(rest);
                        // struct open_how { u64 flags; u64 mode; u64 resolve; }
                        let how: [u64; 3] = [libc::O_RDONLY as u64, 0, 0];
                        // SAFETY: n is a NUL-terminated CString and how a 24-byte open_how, both alive for
                        // the call; the fd is closed once.
                        unsafe {
                            let fd =
                                libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, n.as_ptr(), how.as_ptr(), 24usize);
                            if fd >= 0 {
                                libc::close(fd as i32);
                            }
                        }
                    }
                    b"chdir" => std::env::set_current_dir(std::ffi::OsStr::from_bytes(rest))
                        .unwrap_or_else(|e| die(format!("chdir: {e}"))),
                    b"exec-n" => {
                        let (n, prog) = split(rest);
                        for _ in 0..num(n) {
                            spawn_wait(&[prog.to_vec()]);
                        }
                    }
                    b"execveat-n" => {
                        let (n, prog) = split(rest);
                        for _ in 0..num(n) {
                            spawn_wait_with(&[prog.to_vec()], true);
                        }
                    }
                    b"signals" => signals(num(rest)),
                    b"connect" => connect(rest),
                    b"connect-n" => {
                        let (n, addr) = split(rest);
                        for _ in 0..num(n) {
                            connect(addr);
                        }
                    }
                    b"unix" => unix_connect(rest, false),
                    b"abstract" => unix_connect(rest, true),
                    b"stderr" => {
                        // For the guard's latency benchmark: when the line was written.
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                        println!("workload: write_ns={}", now.as_nanos());
                        let line = [rest, b"\n"].concat();
                        // SAFETY: the buffer is line's, valid for line.len() bytes.
                        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
                    }
                    b"call" => raw_call(rest),
                    b"ptrace-child" => ptrace_child(rest),
                    b"sleep" => std::thread::sleep(std::time::Duration::from_millis(num(rest))),
                    _ => die(format!("unknown operation {:?}", String::from_utf8_lossy(op))),
                }
            }
        }
    }
    let cpu = |who| {
        // SAFETY: rusage is a plain C struct: all-zero bytes are a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: ru is ours and writable; getrusage writes only it.
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1000;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    let cpu_ns = cpu(libc::RUSAGE_SELF) + cpu(libc::RUSAGE_CHILDREN);
    eprintln!("workload: start_ns={start_wall} elapsed_ns={} cpu_ns={cpu_ns}", start.elapsed().as_nanos());
}
