//! `trace` and `report`'s loop: the event reader (`reader.rs`), the optional traced command,
//! signals and a deadline. When it ends, every pending record is drained.

use std::{ffi::OsString, time::Duration};

use tokio::signal::unix::{SignalKind, signal};

use crate::{
    event::Event,
    loader::{KernelStats, Loaded},
    reader::{Counts, DRAIN_EVERY, Growth, Reader},
};

pub(crate) struct RunOptions {
    pub command: Option<Vec<OsString>>,
    pub duration: Option<Duration>,
    /// Look up /proc/PID/exe for processes whose exe the kernel did not send (reports,
    /// which use lean records, need none).
    pub resolve_exe: bool,
    /// Run the command in a process group of its own and pass signals to the whole group
    /// (`tracer ci`: a CI timeout stops the job's tree, not only its first process).
    pub group: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The command's exit status (128+signal when killed), when one was run.
    pub exit_code: Option<i32>,
    pub counts: Counts,
    pub stats: KernelStats,
    /// Writing the events failed: the loop stopped there. On any error but a closed pipe
    /// (the reader went away, as with `| head`) the traced command was killed: it must not
    /// run on untraced.
    pub write_error: Option<std::io::Error>,
    /// The signal that stopped the run (SIGINT, SIGTERM, SIGHUP to the tracer).
    pub stopped_by: Option<i32>,
}

pub(crate) async fn run(
    loaded: &mut Loaded,
    opts: RunOptions,
    mut on_event: impl FnMut(Event) -> std::io::Result<()>,
    mut on_batch_end: impl FnMut() -> std::io::Result<()>,
) -> anyhow::Result<Outcome> {
    // `trace --rules`: the one place the user-side end of the rule decision runs.
    let rules = loaded.rules.clone();
    let mut on_event = move |mut ev: Event| -> std::io::Result<()> {
        if let Some(r) = &rules
            && !crate::rules::decide(r, &mut ev)
        {
            return Ok(());
        }
        on_event(ev)
    };
    let mut reader = Reader::new(loaded, opts.resolve_exe)?;
    let mut out = Outcome::default();
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut child = match &opts.command {
        Some(cmd) => {
            // Resolved here: a PATH search in the forked child would show up as failed
            // execs of the tracer's own image.
            let mut c = tokio::process::Command::new(resolve_command(&cmd[0])?);
            c.arg0(&cmd[0]).args(&cmd[1..]);
            if opts.group {
                c.process_group(0);
            }
            Some(c.spawn().map_err(|e| anyhow::anyhow!("cannot run {:?}: {e}", cmd[0]))?)
        }
        None => None,
    };
    // The group's id is the first process's pid (process_group(0)).
    let group = child.as_ref().and_then(|c| c.id()).filter(|_| opts.group);
    let deadline = tokio::time::sleep(opts.duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut drain_tick = tokio::time::interval(DRAIN_EVERY);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut drain = |reader: &mut Reader| -> std::io::Result<()> {
        reader.drain(&mut on_event)?;
        on_batch_end()
    };

    // A stopped group that ignores the signal gets SIGKILL after GRACE.
    let grace = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(grace);
    let mut grace_armed = false;
    let mut failed = None;
    loop {
        if let (Some(_), Some(_), false) = (group, out.stopped_by, grace_armed) {
            grace.as_mut().reset(tokio::time::Instant::now() + GRACE);
            grace_armed = true;
        }
        tokio::select! {
            () = &mut grace, if grace_armed => {
                if let Some(pgid) = group {
                    // SAFETY: kill takes plain integers.
                    unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
                }
                grace.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(u64::MAX / 4));
            }
            r = reader.readable() => {
                r?;
                if let Err(e) = drain(&mut reader) { failed = Some(e); break; }
            }
            status = async { child.as_mut().unwrap().wait().await }, if child.is_some() => {
                let status = status?;
                use std::os::unix::process::ExitStatusExt;
                out.exit_code = Some(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
                break;
            }
            _ = sigint.recv() => {
                out.stopped_by = Some(libc::SIGINT);
                if !forward(&child, libc::SIGINT, opts.group) { break; }
            }
            _ = sigterm.recv() => {
                out.stopped_by = Some(libc::SIGTERM);
                if !forward(&child, libc::SIGTERM, opts.group) { break; }
            }
            // A closed terminal ends the run like SIGTERM: drained, counted, summed up.
            _ = sighup.recv() => {
                out.stopped_by = Some(libc::SIGHUP);
                if !forward(&child, libc::SIGHUP, opts.group) { break; }
            }
            _ = &mut deadline => break,
            _ = drain_tick.tick() => {
                if let Err(e) = drain(&mut reader) { failed = Some(e); break; }
            }
            _ = tick.tick() => warn_growth(reader.grown(loaded)?),
        }
    }
    // Stopped by a signal: the rest of the job's tree got it too; its ends belong in the
    // summary, so wait for the group to go (SIGKILL after a grace period).
    if let (Some(pgid), Some(_)) = (group, out.stopped_by) {
        wait_group(pgid).await;
    }
    // Records committed before the command exited (or the signal) are all in the ring.
    if failed.is_none() {
        failed = drain(&mut reader).err();
    }
    if let Some(e) = failed {
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Some(c) = child.as_mut()
        {
            let _ = c.start_kill();
            use std::os::unix::process::ExitStatusExt;
            out.exit_code = c.wait().await.ok().map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)));
        }
        out.write_error = Some(e);
    }
    // A writer blocked on a full pipe may never have reached a tick: warn here too.
    warn_growth(reader.grown(loaded)?);
    out.counts = reader.counts(loaded)?;
    out.stats = loaded.stats()?;
    loaded.print_prog_stats();
    Ok(out)
}

/// Loss is shown as soon as the loop sees it, not only in the closing line.
fn warn_growth(grown: Growth) {
    if let Some(n) = grown.lost {
        eprintln!("tracer: warning: {n} events lost so far (ring buffer full); raise --buffer-size");
    }
    if let Some(n) = grown.undecodable {
        eprintln!("tracer: warning: {n} records could not be decoded so far");
    }
}

/// CMD as execvp(3) would find it.
pub(crate) fn resolve_command(cmd: &std::ffi::OsStr) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::{ffi::OsStrExt, fs::PermissionsExt};
    let is_exec = |p: &std::path::Path| {
        std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    };
    let not_found = || crate::error::UsageError(format!("command not found: {}", cmd.to_string_lossy())).into();
    if cmd.as_bytes().contains(&b'/') {
        let p = std::path::PathBuf::from(cmd);
        return if is_exec(&p) { Ok(p) } else { Err(not_found()) };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| is_exec(p)).ok_or_else(not_found)
}

/// Passes a signal to the traced command so it can exit and be drained; false when there
/// is no command (the tracer itself stops).
fn forward(child: &Option<tokio::process::Child>, sig: i32, group: bool) -> bool {
    match child.as_ref().and_then(|c| c.id()) {
        Some(pid) => {
            let target = if group { -(pid as i32) } else { pid as i32 };
            // SAFETY: kill takes plain integers; a pid that has exited is an error (ESRCH), not UB.
            unsafe { libc::kill(target, sig) };
            true
        }
        None => false,
    }
}

/// How long a stopped job's group has to end before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Waits for process group `pgid` to be empty (the rest of a stopped job's tree), killing
/// what is left after GRACE.
async fn wait_group(pgid: u32) {
    // SAFETY: kill takes plain integers; signal 0 only checks that the group exists.
    let alive = || unsafe { libc::kill(-(pgid as i32), 0) } == 0;
    for round in 0..300 {
        if !alive() {
            return;
        }
        if round == 250 {
            // SAFETY: as above.
            unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Loss is never silent: the totals go to stderr at the end of every run.
pub(crate) fn report_totals(o: &Outcome) {
    eprintln!("tracer: {}", o.counts);
}
