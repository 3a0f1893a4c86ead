//! `tracer daemon [--config FILE]`: the long-running recorder, auditd's role. It traces the
//! whole machine (exec, open, connect) into a log ausearch reads (or JSON lines), rotates
//! it, reloads its configuration on SIGHUP, rotates on SIGUSR1, and on SIGTERM/SIGINT drains
//! every pending record, writes the closing counts and exits 0.

pub(crate) mod config;
mod disk;
mod log;
pub(crate) mod state;

use std::{
    path::PathBuf,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tracer_common::config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, ENABLE_RULES, WANT_CWD};

use self::{
    config::{Config, LogFormat},
    log::{LogWriter, Shared},
    state::State,
};
use crate::{
    error::UsageError,
    reader::{DRAIN_EVERY, Reader},
    runlock,
    sink::{self, Sink},
};

pub(crate) const DEFAULT_CONFIG: &str = "/etc/tracer/tracer.conf";

#[derive(Args, Debug)]
pub(crate) struct DaemonArgs {
    /// Configuration file (auditd.conf syntax).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// The log's sink for `c`, writing through a fresh `LogWriter` that shares `shared`.
fn log_sink(c: &Config, shared: &Arc<Shared>) -> anyhow::Result<Box<dyn Sink>> {
    let w = LogWriter::open(c, shared.clone())
        .map_err(|e| UsageError(format!("cannot write {}: {e}", c.log_file.display())))?;
    let format = match c.log_format {
        LogFormat::Audit => sink::Format::Audit,
        LogFormat::Json => sink::Format::Json,
    };
    Ok(sink::make(format, Box::new(w), None))
}

fn options(c: &Config) -> anyhow::Result<crate::loader::Options> {
    let filters = super::Filters { buffer_size: c.buffer_size, ..Default::default() };
    // The rules directory's `*.rules` (as augenrules), if it has any: then the log holds
    // exactly what they select, tagged with their keys; else every exec, open and connect.
    let rules = match rule_files(&c.rules) {
        files if files.is_empty() => None,
        _ => crate::rules::compile(std::slice::from_ref(&c.rules))?,
    };
    let mut enabled = if rules.is_some() { ENABLE_RULES } else { ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT };
    if c.log_format == LogFormat::Audit {
        enabled |= WANT_CWD;
    }
    let mut opts = filters.options(enabled, false);
    opts.rules = rules;
    Ok(opts)
}

/// The `*.rules` files of `dir` (none when it does not exist).
fn rule_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "rules")).collect())
        .unwrap_or_default()
}

pub(crate) async fn run(args: DaemonArgs) -> anyhow::Result<i32> {
    // Everything that can be wrong with the input is found before anything starts.
    let mut cfg = config::read(&args.config).map_err(|e| UsageError(e.to_string()))?;
    runlock::run_dir().map_err(|e| UsageError(e.to_string()))?;
    let _lock = runlock::lock(&state::lock_path()).map_err(|e| match e {
        runlock::LockError::Held(pid) => UsageError(format!("another tracer daemon (pid {pid}) is running")),
        e => UsageError(e.to_string()),
    })?;
    let shared = Arc::new(Shared::default());
    let mut sink = log_sink(&cfg, &shared)?;
    let mut loaded = crate::error::load_or_usage_error(&options(&cfg)?)?;
    let rules = loaded.rules.clone();
    let mut reader = Reader::new(&mut loaded, true)?;

    let mut st = State {
        pid: std::process::id(),
        started: state::now(),
        config: std::path::absolute(&args.config).unwrap_or_else(|_| args.config.clone()),
        writing: cfg.write_logs,
        ..Default::default()
    };
    let describe = |st: &mut State, c: &Config| {
        st.rules = c.rules.clone();
        st.log_file = c.log_file.clone();
        st.log_format = format!("{:?}", c.log_format).to_lowercase();
    };
    describe(&mut st, &cfg);
    let mut written = 0u64;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut drain_tick = tokio::time::interval(DRAIN_EVERY);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    eprintln!("tracer: daemon started (pid {}), logging to {}", st.pid, cfg.log_file.display());

    // Every event goes to the sink; when the file is full the sink is flushed (and the log
    // rotated) right after the event, never inside one.
    let drain = |reader: &mut Reader, sink: &mut Box<dyn Sink>, written: &mut u64| -> std::io::Result<()> {
        reader.drain(|mut ev| {
            // The user-side end of the rule decision, as `stream.rs` does for trace.
            if let Some(r) = &rules
                && !crate::rules::decide(r, &mut ev)
            {
                return Ok(());
            }
            sink.event(&ev)?;
            if !shared.suspended.load(Relaxed) {
                *written += 1;
            }
            if shared.full.load(Relaxed) { sink.flush() } else { Ok(()) }
        })?;
        sink.flush()
    };
    loop {
        tokio::select! {
            r = reader.readable() => {
                r?;
                drain(&mut reader, &mut sink, &mut written)?;
            }
            _ = drain_tick.tick() => drain(&mut reader, &mut sink, &mut written)?,
            _ = usr1.recv() => {
                drain(&mut reader, &mut sink, &mut written)?;
                shared.rotate_now.store(true, Relaxed);
                sink.flush()?;
                eprintln!("tracer: log rotated (SIGUSR1)");
            }
            _ = usr2.recv() => {
                drain(&mut reader, &mut sink, &mut written)?;
                shared.resume_now.store(true, Relaxed);
                sink.flush()?;
            }
            _ = hup.recv() => {
                // The programs stay attached and the ring is drained into the old sink up
                // to the switch: no event is missed.
                match config::read(&args.config) {
                    Ok(new) => {
                        drain(&mut reader, &mut sink, &mut written)?;
                        match log_sink(&new, &shared) {
                            Ok(s) => {
                                if new.buffer_size != cfg.buffer_size {
                                    eprintln!("tracer: warning: buffer_size takes effect at the next start");
                                }
                                if new.rules != cfg.rules {
                                    eprintln!("tracer: warning: rules take effect at the next start");
                                }
                                sink = s;
                                cfg = new;
                                describe(&mut st, &cfg);
                                st.reloads += 1;
                                eprintln!("tracer: configuration reloaded from {}", args.config.display());
                            }
                            Err(e) => {
                                st.reloads_refused += 1;
                                eprintln!("tracer: error: reload refused, old configuration kept: {e:#}");
                            }
                        }
                    }
                    Err(e) => {
                        st.reloads_refused += 1;
                        eprintln!("tracer: error: reload refused, old configuration kept: {e}");
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                let c = reader.counts(&loaded)?;
                save(&mut st, &shared, c, written);
            }
        }
    }
    drain(&mut reader, &mut sink, &mut written)?;
    sink.flush()?;
    let c = reader.counts(&loaded)?;
    eprintln!("tracer: daemon stopping: {c}, {written} written to {}", cfg.log_file.display());
    let _ = std::fs::remove_file(state::state_path());
    Ok(0)
}

fn save(st: &mut State, shared: &Shared, c: crate::reader::Counts, written: u64) {
    st.events = c.events;
    st.lost = c.lost;
    st.undecodable = c.undecodable;
    st.events_written = written;
    st.log_size = shared.size.load(Relaxed);
    st.rotations = shared.rotations.load(Relaxed);
    st.last_rotation = Some(shared.last_rotation.load(Relaxed)).filter(|&t| t > 0);
    st.writing = !shared.suspended.load(Relaxed);
    st.disk_actions = shared.disk_actions.load(Relaxed);
    if let Err(e) = st.save() {
        eprintln!("tracer: warning: cannot write {}: {e}", state::state_path().display());
    }
}
