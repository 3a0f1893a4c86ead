//! Slow-down of one workload under each configuration, and the tracer's own costs.

use std::{
    fs::File,
    path::Path,
    process::{Command, Stdio},
};

use super::{BenchArgs, Bins, field, median, summary, wall_ns};

const AUID: u32 = 7100;
const AUDIT_KEY: &str = "tracer-bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Untraced,
    Report,
    Trace,
    /// The programs attached, every event filtered out in the kernel: the floor.
    HooksOnly,
    Auditd,
    Strace,
    /// The equivalent bpftrace one-liner (`BPFTRACE_SCRIPT`).
    Bpftrace,
    /// Debian's STIG rule set (`STIG`) evaluated in the kernel by `trace --rules`.
    RulesStig,
    /// The same rule set in auditd.
    AuditdStig,
}

/// Debian's shipped STIG rules: what `trace --rules` and auditd both load for the rule rows.
/// The workload trips none of them (its opens succeed, it runs no rule's syscall): the rows
/// measure what evaluating the rules costs every call.
const STIG: &str = "/usr/share/doc/auditd/examples/rules/30-stig.rules";

/// What `report` does, as bpftrace would: per-auid syscall counts, and a line per exec,
/// open and connect of the login UID (paths from the entry arguments).
const BPFTRACE_SCRIPT: &str =
    "tracepoint:raw_syscalls:sys_exit /curtask->loginuid.val == AUID/ { @syscalls[args->id] = count(); }
tracepoint:syscalls:sys_enter_openat /curtask->loginuid.val == AUID/ { printf(\"open %s\\n\", str(args->filename)); }
tracepoint:syscalls:sys_enter_execve /curtask->loginuid.val == AUID/ { printf(\"exec %s\\n\", str(args->filename)); }
tracepoint:syscalls:sys_enter_connect /curtask->loginuid.val == AUID/ { printf(\"connect\\n\"); }";

impl Mode {
    /// The runs under a second: the untraced workload and the tracer's own configurations.
    fn is_tracer_or_untraced(self) -> bool {
        matches!(self, Mode::Untraced | Mode::Report | Mode::Trace | Mode::HooksOnly | Mode::RulesStig)
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Mode::Untraced => "untraced",
            Mode::Report => "tracer report --auid N",
            Mode::Trace => "tracer trace --auid N --format json --output FILE",
            Mode::HooksOnly => "tracer trace --comm no-such (hooks only, nothing matches)",
            Mode::Auditd => "auditd -S execve,openat,connect -F auid=N",
            Mode::Strace => "strace -f -e trace=execve,openat,connect",
            Mode::Bpftrace => "bpftrace: per-auid syscall counts, exec/open/connect prints",
            Mode::RulesStig => "tracer trace --rules 30-stig.rules --format json --output FILE",
            Mode::AuditdStig => "auditd with 30-stig.rules",
        }
    }
}

#[derive(Default)]
struct Sample {
    wall_ns: f64,
    tracer_cpu_ns: Option<f64>,
    rss_kib: Option<f64>,
    attach_ns: Option<f64>,
    exact: Option<bool>,
    lost: Option<u64>,
    /// Time in the tracer's kernel programs (`TRACER_PROG_STATS` runs only).
    kernel_ns: Option<f64>,
}

pub(super) struct Row {
    pub mode: Mode,
    pub median_ms: f64,
    /// Median over the rounds of this run's time over the untraced run's of the same round.
    pub ratio: f64,
    /// Median over the rounds of this ratio minus the hooks-only ratio of the same round,
    /// with the quartiles of those distances (their spread is the noise of the machine).
    pub above_floor: Option<(f64, f64, f64)>,
    /// Runs measured.
    pub runs: usize,
    pub cpu_ms: Option<f64>,
    pub rss_mib: Option<f64>,
    pub attach_ms: Option<f64>,
    pub exact: Option<bool>,
    pub lost: Option<u64>,
    /// Time in the kernel programs during one run (a run of its own with the kernel's BPF
    /// run-time statistics on: they cost two clock reads per program run).
    pub kernel_ms: Option<f64>,
}

pub(super) struct Overhead {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

pub(super) fn run(args: &BenchArgs, bins: &Bins) -> anyhow::Result<Overhead> {
    let dir = std::env::temp_dir().join(format!("tracer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let file = dir.join("bench-file");
    std::fs::write(&file, "x")?;
    let mut notes = Vec::new();
    let mut modes = vec![Mode::Untraced, Mode::Report, Mode::Trace, Mode::HooksOnly];
    let stig = Path::new(STIG).exists();
    if stig {
        modes.push(Mode::RulesStig);
    } else {
        notes.push(format!("the STIG rows not measured: {STIG} missing (Debian's auditd package ships it)"));
    }
    let mut audit = None;
    if !args.tracer_only {
        match auditd_start() {
            Ok(state) => {
                audit = Some(state);
                modes.push(Mode::Auditd);
                if stig {
                    modes.push(Mode::AuditdStig);
                }
            }
            Err(e) => notes.push(format!("auditd not measured: {e}")),
        }
        if super::have("strace") {
            modes.push(Mode::Strace);
        } else {
            notes.push("strace not measured: not installed (cargo xtask setup installs it)".into());
        }
        if super::have("bpftrace") {
            modes.push(Mode::Bpftrace);
        } else {
            notes.push("bpftrace not measured: not installed (cargo xtask setup installs it)".into());
        }
    }
    // Ratios mean little on a machine busy with other work: say how busy it was.
    let load =
        || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').next().unwrap_or("?").to_string();
    let load_before = load();
    // Rounds: every configuration once per round, in an order turned by one each round (no
    // configuration always follows the same one); the slow tools only in the first
    // `repeats` rounds. Each round's ratios are to its own untraced run, so a machine that
    // drifts faster or slower over the minutes moves both sides of a ratio together.
    let rounds = args.repeats.max(args.tracer_repeats);
    let mut samples: Vec<Vec<Option<Sample>>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..modes.len() {
            let i = (k + round) % modes.len();
            let mode = modes[i];
            let sample = if round < args.repeats || mode.is_tracer_or_untraced() {
                eprintln!("bench: round {}/{rounds} {}", round + 1, mode.label());
                Some(run_once(mode, args, bins, &file, &dir, false)?)
            } else {
                None
            };
            samples[i].push(sample);
        }
    }
    // A profile of where the tracer's kernel time goes, apart from the timed runs.
    let mut kernel_ns: Vec<Option<f64>> = Vec::new();
    for &mode in &modes {
        let traced = matches!(mode, Mode::Report | Mode::Trace | Mode::HooksOnly | Mode::RulesStig);
        kernel_ns.push(if traced { run_once(mode, args, bins, &file, &dir, true)?.kernel_ns } else { None });
    }
    notes.push(format!(
        "1-minute load average before the runs {load_before}, after {} ({} cores): above the core count, other work shared the machine and the ratios carry its noise",
        load(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    if let Some(state) = audit {
        let lost = auditd_lost();
        notes.push(format!("auditd's kernel lost counter after the runs: {lost}"));
        state.restore();
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Per round: each run's time over the untraced run's.
    let ratios: Vec<Vec<Option<f64>>> = samples
        .iter()
        .map(|s| s.iter().zip(&samples[0]).map(|(x, u)| Some(x.as_ref()?.wall_ns / u.as_ref()?.wall_ns)).collect())
        .collect();
    let floor = modes.iter().position(|&m| m == Mode::HooksOnly).map(|i| ratios[i].clone());
    let rows = modes
        .iter()
        .zip(&samples)
        .zip(&ratios)
        .zip(kernel_ns)
        .map(|(((&mode, s), ratio), kernel_ns)| {
            let s: Vec<&Sample> = s.iter().flatten().collect();
            let med = |f: &dyn Fn(&Sample) -> Option<f64>| {
                let mut v: Vec<f64> = s.iter().copied().filter_map(f).collect();
                (!v.is_empty()).then(|| median(&mut v))
            };
            let wall = med(&|x| Some(x.wall_ns)).unwrap_or(f64::NAN);
            let above_floor =
                floor.as_ref().filter(|_| !matches!(mode, Mode::Untraced | Mode::HooksOnly)).and_then(|f| {
                    let mut d: Vec<f64> = ratio.iter().zip(f).filter_map(|(r, f)| Some((*r)? - (*f)?)).collect();
                    quartiles(&mut d)
                });
            Row {
                mode,
                median_ms: wall / 1e6,
                ratio: median(&mut ratio.iter().flatten().copied().collect::<Vec<_>>()),
                above_floor,
                runs: s.len(),
                cpu_ms: med(&|x| x.tracer_cpu_ns).map(|v| v / 1e6),
                rss_mib: med(&|x| x.rss_kib).map(|v| v / 1024.0),
                attach_ms: med(&|x| x.attach_ns).map(|v| v / 1e6),
                exact: s.iter().map(|x| x.exact).collect::<Option<Vec<bool>>>().map(|v| v.iter().all(|&b| b)),
                lost: s.iter().map(|x| x.lost).collect::<Option<Vec<u64>>>().map(|v| v.iter().sum()),
                kernel_ms: kernel_ns.map(|v| v / 1e6),
            }
        })
        .collect();
    Ok(Overhead { rows, notes })
}

/// First quartile, median (as every other median of the bench), third quartile; None when
/// empty.
fn quartiles(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let m = median(v);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.25), m, at(0.75)))
}

fn workload_args(args: &BenchArgs, file: &Path) -> Vec<String> {
    vec![
        "--loginuid".into(),
        AUID.to_string(),
        "--ids".into(),
        format!("{AUID}:{AUID}"),
        format!("open-n:{}:{}", args.opens, file.display()),
        format!("exec-n:{}:/bin/true", args.execs),
        format!("connect-n:{}:127.0.0.1:9", args.connects),
    ]
}

/// One run of `mode`; `prog_stats`: with the kernel's BPF run-time statistics on.
fn run_once(
    mode: Mode,
    args: &BenchArgs,
    bins: &Bins,
    file: &Path,
    dir: &Path,
    prog_stats: bool,
) -> anyhow::Result<Sample> {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let events_path = dir.join("events.json");
    // `trace --output` appends: each run starts from an empty file.
    let _ = std::fs::remove_file(&events_path);
    let w = bins.workload.display().to_string();
    let wargs = workload_args(args, file);
    let auid = AUID.to_string();
    let events = |name: &str| dir.join(name).display().to_string();
    let mut cmd = match mode {
        Mode::Untraced | Mode::Auditd | Mode::AuditdStig => {
            let mut c = Command::new(&bins.workload);
            c.args(&wargs);
            c
        }
        Mode::Report => {
            let mut c = Command::new(&bins.tracer);
            c.args(["report", "--auid", &auid, "--format", "json", "--"]).arg(&w).args(&wargs);
            c
        }
        Mode::Trace => {
            let mut c = Command::new(&bins.tracer);
            c.args(["trace", "--auid", &auid, "--format", "json", "--output"])
                .arg(&events_path)
                .arg("--")
                .arg(&w)
                .args(&wargs);
            c
        }
        Mode::HooksOnly => {
            let mut c = Command::new(&bins.tracer);
            c.args(["trace", "--comm", "no-such", "--format", "json", "--output", "/dev/null", "--"])
                .arg(&w)
                .args(&wargs);
            c
        }
        Mode::RulesStig => {
            let mut c = Command::new(&bins.tracer);
            c.args(["trace", "--rules", STIG, "--format", "json", "--output"])
                .arg(&events_path)
                .arg("--")
                .arg(&w)
                .args(&wargs);
            c
        }
        Mode::Strace => {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-e", "trace=execve,openat,connect", "-o", "/dev/null"]).arg(&w).args(&wargs);
            c
        }
        Mode::Bpftrace => {
            // -c starts the workload once the probes are attached (its arguments hold no spaces).
            let mut c = Command::new("bpftrace");
            c.args(["-o", &events("bpftrace.out"), "-e", &BPFTRACE_SCRIPT.replace("AUID", &auid), "-c"])
                .arg(format!("{w} {}", wargs.join(" ")));
            c
        }
    };
    // Audit is enabled only while its configuration runs: an enabled audit subsystem
    // costs every syscall something, which would blur the other rows.
    if mode == Mode::Auditd {
        crate::util::check(Command::new("auditctl").args(["-e", "1"]).stdout(Stdio::null()))?;
        crate::util::check(Command::new("auditctl").args(audit_rule("-a")))?;
    }
    if mode == Mode::AuditdStig {
        crate::util::check(Command::new("auditctl").args(["-e", "1"]).stdout(Stdio::null()))?;
        load_stig();
    }
    if prog_stats {
        cmd.env("TRACER_PROG_STATS", "1");
    }
    cmd.stdout(Stdio::from(File::create(&out_path)?)).stderr(Stdio::from(File::create(&err_path)?));
    let spawned_at = wall_ns();
    let child = cmd.spawn()?;
    let mut status = 0;
    // SAFETY: rusage is a plain C struct: all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 gives the child's resource use (the tracer's, with its reaped children).
    // SAFETY: status and ru are ours and writable; wait4 writes only them.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    if mode == Mode::Auditd {
        crate::util::check(Command::new("auditctl").args(audit_rule("-d")))?;
        crate::util::check(Command::new("auditctl").args(["-e", "0"]).stdout(Stdio::null()))?;
    }
    if mode == Mode::AuditdStig {
        // Only the bench's rules are loaded while it runs (nothing else runs on the machine).
        crate::util::check(Command::new("auditctl").arg("-D").stdout(Stdio::null()))?;
        crate::util::check(Command::new("auditctl").args(["-e", "0"]).stdout(Stdio::null()))?;
    }
    anyhow::ensure!(
        rc > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} failed (status {status}): {}",
        mode.label(),
        std::fs::read_to_string(&err_path)?
    );
    let stderr = std::fs::read_to_string(&err_path)?;
    let wl = stderr
        .lines()
        .find(|l| l.starts_with("workload: "))
        .ok_or_else(|| anyhow::anyhow!("no workload line in {stderr}"))?;
    let mut s = Sample { wall_ns: field(wl, "elapsed_ns").unwrap_or(0) as f64, ..Default::default() };
    if matches!(mode, Mode::Report | Mode::Trace | Mode::HooksOnly | Mode::RulesStig) {
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
        let total = tv(ru.ru_utime) + tv(ru.ru_stime);
        s.tracer_cpu_ns = Some((total - field(wl, "cpu_ns").unwrap_or(0) as f64).max(0.0));
        s.rss_kib = Some(ru.ru_maxrss as f64);
        s.attach_ns = field(wl, "start_ns").map(|st| st.saturating_sub(spawned_at) as f64);
        s.lost = summary(&stderr).1;
        // `tracer: program NAME: runs=N run_ns=T`, one line per program.
        let progs: Vec<f64> = stderr
            .lines()
            .filter(|l| l.starts_with("tracer: program "))
            .filter_map(|l| field(l, "run_ns"))
            .map(|t| t as f64)
            .collect();
        s.kernel_ns = (!progs.is_empty()).then(|| progs.iter().sum());
        s.exact = match mode {
            Mode::Report => Some(report_exact(&std::fs::read_to_string(&out_path)?, args, file)),
            Mode::Trace => Some(trace_exact(&std::fs::read_to_string(&events_path)?, args, file)),
            _ => None,
        };
    }
    Ok(s)
}

fn trace_exact(json: &str, args: &BenchArgs, file: &Path) -> bool {
    let f = file.display().to_string();
    let (mut opens, mut execs, mut connects) = (0, 0, 0);
    for line in json.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else { return false };
        match e["event"].as_str() {
            Some("open") if e["path"] == f.as_str() => opens += 1,
            Some("exec") if e["filename"] == "/bin/true" && e["ret"] == 0 => execs += 1,
            Some("connect") if e["port"] == 9 && e["error"] == "ECONNREFUSED" => connects += 1,
            _ => {}
        }
    }
    (opens, execs, connects) == (args.opens, args.execs, args.connects)
}

fn report_exact(json: &str, args: &BenchArgs, file: &Path) -> bool {
    let Ok(r) = serde_json::from_str::<serde_json::Value>(json) else { return false };
    let r = if r.is_array() { r[0].clone() } else { r };
    let count = |list: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        r[list].as_array().and_then(|a| a.iter().find(|e| pred(e))).and_then(|e| e["count"].as_u64()).unwrap_or(0)
    };
    let f = file.display().to_string();
    count("files", &|e| e["path"] == f.as_str()) == args.opens
        && count("commands", &|e| e["command"] == "/bin/true") == args.execs
        && count("connections", &|e| e["port"] == 9) == args.connects
        && r["lost_events"] == 0
}

/// The STIG file into auditd line by line, as `auditctl -R` does; a line this machine's
/// kernel refuses (a watched directory that does not exist here) is left out, as by auditd.
fn load_stig() {
    let text = std::fs::read_to_string(STIG).unwrap_or_default();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('-')) {
        let _ =
            Command::new("auditctl").args(line.split_whitespace()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn audit_rule(op: &str) -> Vec<String> {
    [
        "op",
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "execve,openat,connect",
        "-F",
        &format!("auid={AUID}"),
        "-k",
        AUDIT_KEY,
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| if i == 0 { op.to_string() } else { s.to_string() })
    .collect()
}

/// How audit was before the benchmark, to leave it so.
struct AuditState {
    started_daemon: Option<u32>,
    was_enabled: String,
}

impl AuditState {
    fn restore(self) {
        let _ = Command::new("auditctl").args(["-e", &self.was_enabled]).stdout(Stdio::null()).status();
        if let Some(pid) = self.started_daemon {
            // SAFETY: kill takes plain integers; an exited pid is an error, not UB.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
}

fn audit_status(key: &str) -> Option<String> {
    crate::util::output("auditctl", &["-s"]).lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

/// Starts auditd (Debian's defaults) when it is not running (no systemd here); audit stays
/// disabled (-e 0) except while the auditd configuration runs.
fn auditd_start() -> anyhow::Result<AuditState> {
    anyhow::ensure!(
        super::have("auditctl") && super::have("auditd"),
        "auditd is not installed (cargo xtask setup installs it)"
    );
    let was_enabled = audit_status("enabled ").unwrap_or_else(|| "0".into());
    let pid = audit_status("pid ").and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let mut started_daemon = None;
    if pid == 0 {
        crate::util::check(&mut Command::new("auditd"))?;
        std::thread::sleep(std::time::Duration::from_millis(500));
        started_daemon = audit_status("pid ").and_then(|p| p.parse::<u32>().ok()).filter(|&p| p != 0);
    }
    crate::util::check(Command::new("auditctl").args(["-e", "0"]).stdout(Stdio::null()))?;
    Ok(AuditState { started_daemon, was_enabled })
}

fn auditd_lost() -> String {
    crate::util::output("auditctl", &["-s"])
        .lines()
        .find_map(|l| l.strip_prefix("lost "))
        .unwrap_or("?")
        .trim()
        .to_string()
}
