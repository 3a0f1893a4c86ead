//! The one event reader every subcommand uses: the kernel's ring buffer, polled through
//! tokio's `AsyncFd`, decoded into `Event`s and handed to a consumer. It keeps the counts a
//! run must show: events delivered, events the kernel lost (ring full), records that did not
//! decode (counted, never dropped silently).
//!
//! The caller owns the loop (`tokio::select!` with its own signals, timers and sources):
//! `readable().await` then `drain(consumer)`, plus `drain` on a timer and once at the end.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use crate::{decode::Decoder, event::Event, loader::Loaded};

/// The kernel wakes the reader only per batch (`Options::wakeup_bytes`); draining on this
/// timer bounds how long a record can wait when traffic is light.
pub(crate) const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// What a run has read so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Records decoded and handed to the consumer.
    pub events: u64,
    /// Records the kernel could not write (ring buffer full), from its own counter.
    pub lost: u64,
    /// Records that did not decode.
    pub undecodable: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events, {} lost, {} undecodable", self.events, self.lost, self.undecodable)
    }
}

/// Totals that grew since the reader last said (see `Reader::grown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Growth {
    pub lost: Option<u64>,
    pub undecodable: Option<u64>,
}

pub(crate) struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
    decoder: Decoder,
    counts: Counts,
    /// `lost` and `undecodable` as last returned by `grown`.
    shown: Counts,
}

impl Reader {
    /// Takes the ring buffer out of `loaded` and registers it with tokio (the only place that
    /// does). `resolve_exe`: look up /proc/PID/exe for processes whose exe the kernel did not
    /// send (reports, which use lean records, need none).
    pub(crate) fn new(loaded: &mut Loaded, resolve_exe: bool) -> anyhow::Result<Self> {
        let ring = loaded.take_ring()?;
        // SAFETY: the AsyncFd owns the RingBuf, which owns the map fd: the fd stays open for
        // as long as it is registered.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot poll the ring buffer: {e}"))?;
        let mut decoder = Decoder::new();
        decoder.resolve_exe = resolve_exe;
        Ok(Self { ring, decoder, counts: Counts::default(), shown: Counts::default() })
    }

    /// Waits until the kernel signals new records; `drain` reads them. Readiness is cleared
    /// before the drain, so a record committed while draining wakes the next call.
    pub(crate) async fn readable(&mut self) -> std::io::Result<()> {
        self.ring.readable_mut().await?.clear_ready();
        Ok(())
    }

    /// Decodes every record in the ring and hands each event to `consumer`; stops at the
    /// consumer's first error.
    pub(crate) fn drain<E>(&mut self, mut consumer: impl FnMut(Event) -> Result<(), E>) -> Result<(), E> {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            let decoded = self.decoder.decode(&item);
            // Consumed before the consumer runs: a slow consumer does not hold ring space.
            drop(item);
            match decoded {
                Ok(ev) => {
                    self.counts.events += 1;
                    consumer(ev)?;
                }
                Err(_) => self.counts.undecodable += 1,
            }
        }
        Ok(())
    }

    /// `drain` for a consumer that cannot fail.
    pub(crate) fn drain_each(&mut self, mut consumer: impl FnMut(Event)) {
        let Ok(()) = self.drain(|ev| {
            consumer(ev);
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// The counts, with `lost` read from the kernel's counter now.
    pub(crate) fn counts(&mut self, loaded: &Loaded) -> anyhow::Result<Counts> {
        self.counts.lost = loaded.stats()?.lost;
        Ok(self.counts)
    }

    /// New totals of lost and undecodable records, each only when it grew since the last
    /// call: the caller warns once per growth, as soon as its loop sees it.
    pub(crate) fn grown(&mut self, loaded: &Loaded) -> anyhow::Result<Growth> {
        let c = self.counts(loaded)?;
        let g = Growth {
            lost: (c.lost > self.shown.lost).then_some(c.lost),
            undecodable: (c.undecodable > self.shown.undecodable).then_some(c.undecodable),
        };
        self.shown = c;
        Ok(g)
    }
}
