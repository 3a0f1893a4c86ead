//! `tracer status`: is the daemon running, and how is it doing (like `auditctl -s`). Read
//! from the daemon's lock (held while it runs) and its state file, both in /run/tracer.
//! Exit status 0 when it runs, 3 when it does not (as `systemctl status`).

use std::io::Write as _;

use clap::Args;

use super::{daemon::state, trace::Format};
use crate::runlock;

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<i32> {
    let holder = runlock::holder(&state::lock_path())?;
    let st = match holder {
        Some(_) => Some(state::State::load().map_err(|e| {
            anyhow::anyhow!("the daemon runs but its state {} cannot be read: {e}", state::state_path().display())
        })?),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    match (args.format, &st) {
        (Format::Json, None) => writeln!(out, "{}", serde_json::json!({ "running": false }))?,
        (Format::Json, Some(s)) => {
            let mut v = serde_json::to_value(s)?;
            v["running"] = true.into();
            v["uptime"] = state::now().saturating_sub(s.started).into();
            writeln!(out, "{v}")?;
        }
        (Format::Text, None) => writeln!(out, "running 0")?,
        (Format::Text, Some(s)) => {
            let rot = s.last_rotation.map_or_else(
                || "never".to_string(),
                |t| crate::timefmt::rfc3339(t.saturating_mul(1_000_000_000)).to_string(),
            );
            write!(
                out,
                "running 1\npid {}\nuptime {}s\nconfig {}\nrules {} (not read yet)\nlog_file {}\nlog_format {}\n\
                 log_size {}\nwriting {}\nevents {}\nevents_written {}\nlost {}\nundecodable {}\nrotations {}\n\
                 last_rotation {}\nreloads {}\nreloads_refused {}\ndisk_actions {}\n",
                s.pid,
                state::now().saturating_sub(s.started),
                s.config.display(),
                s.rules.display(),
                s.log_file.display(),
                s.log_format,
                s.log_size,
                u8::from(s.writing),
                s.events,
                s.events_written,
                s.lost,
                s.undecodable,
                s.rotations,
                rot,
                s.reloads,
                s.reloads_refused,
                s.disk_actions,
            )?;
            // One line per database output: `output TARGET stored N spooled N dropped N waited_ms N`.
            for o in &s.outputs {
                writeln!(
                    out,
                    "output {} stored {} spooled {} dropped {} waited_ms {}{}{}",
                    o.target,
                    o.stored,
                    o.spooled,
                    o.dropped,
                    o.blocked_ms,
                    if o.blocked { " waiting" } else { "" },
                    if o.failed { " failed" } else { "" },
                )?;
            }
        }
    }
    Ok(if st.is_some() { 0 } else { 3 })
}
