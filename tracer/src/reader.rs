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

use crate::{
    decode::{DecodeError, Decoder},
    event::Event,
    loader::Loaded,
};

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

impl Counts {
    /// Counts one record: the event when it decoded, else one more undecodable.
    fn count(&mut self, decoded: Result<Event, DecodeError>) -> Option<Event> {
        match decoded {
            Ok(ev) => {
                self.events += 1;
                Some(ev)
            }
            Err(_) => {
                self.undecodable += 1;
                None
            }
        }
    }
}

/// Totals that grew since the reader last said (see `Reader::grown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Growth {
    pub lost: Option<u64>,
    pub undecodable: Option<u64>,
}

impl Growth {
    fn since(before: &Counts, now: &Counts) -> Self {
        Self {
            lost: (now.lost > before.lost).then_some(now.lost),
            undecodable: (now.undecodable > before.undecodable).then_some(now.undecodable),
        }
    }
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
            if let Some(ev) = self.counts.count(decoded) {
                consumer(ev)?;
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
        Ok(Growth::since(&std::mem::replace(&mut self.shown, c), &c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_records_are_counted_never_dropped_silently() {
        let mut d = Decoder::new();
        let mut c = Counts::default();
        assert!(c.count(d.decode(b"short")).is_none());
        assert!(c.count(d.decode(&[0xff; 256])).is_none(), "an unknown kind");
        assert_eq!(c, Counts { events: 0, lost: 0, undecodable: 2 });
        assert_eq!(c.to_string(), "0 events, 0 lost, 2 undecodable");
    }

    #[test]
    fn growth_is_said_once_per_increase() {
        let before = Counts { events: 5, lost: 3, undecodable: 1 };
        let same = Counts { events: 9, ..before };
        assert_eq!(Growth::since(&before, &same), Growth::default(), "more events are no news");
        let more_lost = Counts { lost: 7, ..same };
        assert_eq!(Growth::since(&same, &more_lost), Growth { lost: Some(7), undecodable: None });
        let both = Counts { lost: 8, undecodable: 2, ..more_lost };
        assert_eq!(Growth::since(&more_lost, &both), Growth { lost: Some(8), undecodable: Some(2) });
    }
}
