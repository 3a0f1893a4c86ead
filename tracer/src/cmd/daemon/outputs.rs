//! The daemon's `output =` databases, beside the rotated log: one store writer each (schema,
//! batches, spool: tracer-store's). A reload keeps the writers of outputs it keeps (same
//! database, same spool settings), so their counts and spools carry on; new ones are opened
//! before anything is switched, so a database that cannot be used refuses the reload.

use std::{path::PathBuf, sync::Arc, sync::atomic::Ordering::Relaxed};

use tracer_store::{
    Target,
    spool::OnFull,
    writer::{Options, Stats},
};

use super::{config::Config, state::OutputState};
use crate::{cmd::store, event::Event, sink::Sink, sink::store::StoreSink};

/// What makes two outputs the same writer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    target: Target,
    spool_dir: PathBuf,
    spool_bytes: u64,
    on_full: OnFull,
    retention_days: u32,
}

struct Output {
    settings: Settings,
    name: String,
    sink: StoreSink,
    stats: Arc<Stats>,
    failed: bool,
}

#[derive(Default)]
pub(crate) struct Outputs(Vec<Output>);

fn settings(c: &Config) -> Vec<Settings> {
    c.outputs
        .iter()
        .map(|t| Settings {
            target: t.clone(),
            spool_dir: c.spool_dir.join(store::spool_name(t)),
            spool_bytes: c.spool_size.saturating_mul(1 << 20),
            on_full: c.spool_full_action,
            retention_days: c.retention_days,
        })
        .collect()
}

fn open(s: Settings) -> anyhow::Result<Output> {
    let name = store::display(&s.target);
    let sink = store::start(Options {
        target: s.target.clone(),
        retention_days: s.retention_days,
        spool_dir: s.spool_dir.clone(),
        spool_bytes: s.spool_bytes,
        on_full: s.on_full,
        key: None,
    })
    .map_err(|e| crate::error::UsageError(format!("output {name}: {e}")))?;
    let stats = sink.stats().unwrap_or_default();
    Ok(Output { settings: s, name, sink, stats, failed: false })
}

impl Outputs {
    /// Opens every output of `c`; the first that cannot be used is the error (exit 2).
    pub(crate) fn open(c: &Config) -> anyhow::Result<Outputs> {
        let mut all = Outputs::default();
        all.reload(c)?;
        Ok(all)
    }

    /// Switches to `c`'s outputs: kept ones go on, new ones are opened first (an error leaves
    /// everything as it was), dropped ones are closed (their rest stored or spooled).
    pub(crate) fn reload(&mut self, c: &Config) -> anyhow::Result<()> {
        let want = settings(c);
        let mut opened = Vec::new();
        for s in want.iter().filter(|s| !self.0.iter().any(|o| o.settings == **s)) {
            match open(s.clone()) {
                Ok(o) => opened.push(o),
                Err(e) => {
                    Outputs(opened).close();
                    return Err(e);
                }
            }
        }
        let mut old = std::mem::take(&mut self.0);
        for s in want {
            let o = match old.iter().position(|o| o.settings == s) {
                Some(i) => old.remove(i),
                None => opened.remove(opened.iter().position(|o| o.settings == s).expect("opened above")),
            };
            self.0.push(o);
        }
        Outputs(old).close();
        Ok(())
    }

    /// One event to every output still working; a writer that failed is said once and left.
    pub(crate) fn event(&mut self, ev: &Event) {
        for o in self.0.iter_mut().filter(|o| !o.failed) {
            if let Err(e) = o.sink.event(ev) {
                o.failed = true;
                eprintln!("tracer: error: output {}: {e}; no more events go there", o.name);
            }
        }
    }

    /// Hands the buffered rows to the writers (after each batch drained from the kernel).
    pub(crate) fn flush(&mut self) {
        for o in self.0.iter_mut().filter(|o| !o.failed) {
            if let Err(e) = o.sink.flush() {
                o.failed = true;
                eprintln!("tracer: error: output {}: {e}; no more events go there", o.name);
            }
        }
    }

    pub(crate) fn states(&self) -> Vec<OutputState> {
        self.0
            .iter()
            .map(|o| OutputState {
                target: o.name.clone(),
                stored: o.stats.stored.load(Relaxed),
                spooled: o.stats.spooled.load(Relaxed),
                dropped: o.stats.dropped.load(Relaxed),
                blocked_ms: o.stats.blocked_ms.load(Relaxed),
                blocked: o.stats.blocked.load(Relaxed),
                failed: o.failed,
            })
            .collect()
    }

    /// Stores (or spools) what is left and says what happened, one line per output.
    pub(crate) fn close(self) {
        for mut o in self.0 {
            match o.sink.close() {
                Ok(sum) => eprintln!("tracer: output {}: {sum}", o.name),
                Err(e) => eprintln!("tracer: error: output {}: {e}", o.name),
            }
        }
    }
}
