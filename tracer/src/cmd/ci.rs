//! `tracer ci -- CMD`: trace a CI job's tree, then sum it up (stdout, `--summary` Markdown,
//! `--json`), checked against `--policy` and `--baseline`. The engine is `tracer-ci`; this
//! file only turns events into its input and handles files and exit statuses.

use std::{
    ffi::OsString,
    io::Write,
    net::SocketAddr,
    os::unix::ffi::{OsStrExt, OsStringExt},
    path::PathBuf,
};

use clap::Args;
use tracer_ci::{Baseline, ConnectResult, Context, FsOp, Job, Peer, Policy, What, event::escape, render};
use tracer_common::config::{
    ENABLE_CONNECT, ENABLE_CONNECT_OUTCOME, ENABLE_DNS, ENABLE_EXEC, ENABLE_EXIT, ENABLE_LISTEN, ENABLE_OPEN,
    ENABLE_RULES,
};

use crate::{
    error::UsageError,
    event::{Detail, Event},
    loader,
    stream::{self, RunOptions},
};

/// Exit status when the command succeeded but broke the policy.
const VIOLATION: i32 = 3;
/// connect(2)'s -EINPROGRESS: a non-blocking connect still under way.
const EINPROGRESS: i64 = -115;

#[derive(Args, Debug)]
pub(crate) struct CiArgs {
    /// Policy (TOML): allowed egress, write roots, forbidden reads and programs.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Append the Markdown summary to FILE (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Report what this run does beyond the run recorded in FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "record_baseline")]
    pub baseline: Option<PathBuf>,
    /// Record this run's endpoints, programs and write roots in FILE.
    #[arg(long, value_name = "FILE")]
    pub record_baseline: Option<PathBuf>,
    /// Ring buffer size in MiB (a power of two).
    #[arg(long, default_value = "16", value_parser = super::parse_buffer_mib)]
    pub buffer_size: u32,
    /// The job: CMD ARGS...
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

fn env_dir(names: &[&str]) -> Option<Vec<u8>> {
    names.iter().find_map(|n| std::env::var_os(n).filter(|v| !v.is_empty())).map(OsString::into_vec)
}

fn open_out(path: &std::path::Path, append: bool) -> Result<std::fs::File, UsageError> {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
}

pub(crate) async fn run(args: CiArgs) -> anyhow::Result<i32> {
    super::check_command(&args.command)?;
    stream::resolve_command(&args.command[0])?;
    let cwd = std::env::current_dir()?.into_os_string().into_vec();
    let workspace = env_dir(&["GITHUB_WORKSPACE", "CI_PROJECT_DIR"]).unwrap_or(cwd);
    let home = env_dir(&["HOME"]).unwrap_or_default();
    // Everything the user gave is checked before anything runs: a bad policy or baseline
    // is exit 2 with nothing run.
    let policy = match &args.policy {
        Some(p) => Some(Policy::load(p, &workspace, &home).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let mut summary_out = args.summary.as_deref().map(|p| open_out(p, true)).transpose()?;
    let mut json_out = args.json.as_deref().map(|p| open_out(p, false)).transpose()?;
    let mut baseline_out = args.record_baseline.as_deref().map(|p| open_out(p, false)).transpose()?;

    let mut ctx = Context::new(workspace, home);
    ctx.outcomes = true;
    if let Some(p) = &policy {
        ctx.sensitive.extend(p.forbidden_reads.iter().cloned());
    }
    let opts = loader::Options {
        follow_children: true,
        enabled: ENABLE_EXEC
            | ENABLE_OPEN
            | ENABLE_CONNECT
            | ENABLE_EXIT
            | ENABLE_CONNECT_OUTCOME
            | ENABLE_DNS
            | ENABLE_LISTEN
            | ENABLE_RULES,
        ring_bytes: args.buffer_size << 20,
        wakeup_bytes: 64 << 10,
        rules: Some(fs_rules()?),
        ..Default::default()
    };
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    // The built-in rules need no user-side decision (no path or owner conditions), and the
    // stream's decision drops every record no rule selected: all of this job's other events.
    loaded.rules = None;
    let mut job = Job::new(ctx);
    let outcome = stream::run(
        &mut loaded,
        RunOptions { command: Some(args.command.clone()), duration: None, resolve_exe: true, group: true },
        |ev| {
            if let Some(e) = to_ci(&ev) {
                job.add(&e);
            }
            Ok(())
        },
        || Ok(()),
    )
    .await?;
    stream::report_totals(&outcome);

    let mut s = job.summary();
    s.command = args.command.iter().map(|a| escape(a.as_bytes())).collect();
    s.events_lost = outcome.counts.lost + outcome.counts.undecodable;
    // CMD's own end as the kernel saw it; the wait status when the kernel could not tell.
    let root = s.processes.iter().find(|p| p.depth == 0 && (p.status.is_some() || p.signal.is_some()));
    let code = outcome.exit_code.unwrap_or(0);
    match root {
        Some(r) => {
            s.exit.status = r.status;
            s.exit.signal.clone_from(&r.signal);
        }
        None if code > 128 => s.exit.signal = Some(tracer_ci::event::signal_name(code - 128)),
        None => s.exit.status = Some(code),
    }
    s.exit.stopped = outcome.stopped_by.is_some();
    if let Some(p) = &policy {
        s.violations = p.check(&s);
    }
    let now = Baseline::of(&s, job.context());
    if let Some(b) = &baseline {
        s.baseline_new = Some(b.diff(&now));
    }
    s.exit.code = if code != 0 {
        code
    } else if !s.violations.is_empty() {
        VIOLATION
    } else {
        0
    };
    print!("{}", tracer_ci::text::text(&s));
    if let Some(f) = &mut summary_out {
        f.write_all(render::markdown(&s).as_bytes())?;
    }
    if let Some(f) = &mut json_out {
        f.write_all(render::json(&s).as_bytes())?;
    }
    if let Some(f) = &mut baseline_out {
        f.write_all(now.to_json().as_bytes())?;
    }
    Ok(s.exit.code)
}

/// The calls that change files other than through open(2), selected in the kernel by an
/// audit rule (`trace --rules`' machinery), successful ones only.
const FS_RULES: &str = "-a always,exit -F arch=b64 -S unlink,unlinkat,rmdir,rename,renameat,renameat2,chmod,fchmod,fchmodat,mkdir,mkdirat -F success=1 -k tracer-ci\n";

fn fs_rules() -> anyhow::Result<std::sync::Arc<tracer_rules::Compiled>> {
    // tracer-rules reads rule files: this one lives only as long as the compile.
    let path = std::env::temp_dir().join(format!("tracer-ci-{}.rules", std::process::id()));
    std::fs::write(&path, FS_RULES)?;
    let compiled = crate::rules::compile(std::slice::from_ref(&path));
    let _ = std::fs::remove_file(&path);
    compiled?.ok_or_else(|| anyhow::anyhow!("the built-in rules compiled to nothing"))
}

/// What a rule-selected call did to the file system (x86_64 numbers; the rule is b64 only).
fn fs_change(nr: u32, c: &crate::event::Syscall) -> Option<What> {
    let op = match nr {
        87 | 263 | 84 => FsOp::Delete,
        82 | 264 | 316 => FsOp::Rename,
        90 | 91 | 268 => FsOp::Chmod,
        83 | 258 => FsOp::Mkdir,
        _ => return None,
    };
    let path = c.names.first()?.host_path.clone();
    let to = (op == FsOp::Rename).then(|| c.names.get(1).map(|n| n.host_path.clone())).flatten();
    Some(What::Fs { op, path, to, error: None })
}

/// The engine's view of one event (None for what it does not use).
fn to_ci(ev: &Event) -> Option<tracer_ci::Event> {
    let error = || ev.error().map(str::to_string).or_else(|| (ev.ret < 0).then(|| ev.ret.to_string()));
    let what = match &ev.detail {
        Detail::Syscall(c) => fs_change(ev.syscall, c)?,
        Detail::Exec(e) => What::Exec { filename: e.filename.clone(), argv: e.argv.clone(), ok: ev.ok() },
        Detail::Open(o) => What::Open { path: o.host_path.clone(), flags: o.flags, error: error() },
        Detail::Connect(c) => {
            let peer = match &c.peer {
                crate::event::Peer::Inet { address, port } => Peer::Inet(SocketAddr::new(*address, *port)),
                crate::event::Peer::Unix { path } => Peer::Unix(path.clone()),
            };
            let result = match ev.ret {
                0.. => ConnectResult::Connected,
                EINPROGRESS => ConnectResult::InProgress,
                _ => ConnectResult::Failed(error().unwrap_or_default()),
            };
            What::Connect { peer, result }
        }
        Detail::Exit(x) => What::Exit { status: x.status(), signal: x.signal() },
        Detail::ConnectOutcome(o) => {
            let crate::event::Peer::Inet { address, port } = o.peer else { return None };
            let result = if o.established {
                ConnectResult::Connected
            } else {
                // A socket closed before the handshake has no error of its own.
                ConnectResult::Failed(error().unwrap_or_else(|| "closed".into()))
            };
            What::ConnectOutcome { peer: SocketAddr::new(address, port), result }
        }
        Detail::Dns(d) => What::Dns { message: d.data.clone() },
        Detail::Listen(l) => What::Listen { local: l.local },
        Detail::Log(_) => return None,
    };
    Some(tracer_ci::Event { time_ns: ev.time_ns, pid: ev.pid, ppid: ev.ppid, comm: ev.comm.clone(), what })
}
