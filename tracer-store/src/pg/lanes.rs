//! Lanes: each day's partition is split by `HASH (seq)` into `LANES` tables, and a batch is
//! written over `LANES` connections at once, each taking the rows of one table. The server's
//! work per row (five B-tree insertions) is the bound on one core; two backends inserting
//! into the same tables gain nothing (both append at the right edge of the same index pages
//! and wait on each other's page locks), two backends with tables of their own do (this
//! machine's bench: 61 500 rows/s before, 77 000–100 500 after, on 2 cores).
//!
//! Each lane's connection lives on a thread of its own (`Lane`), which takes its part of
//! each batch in turn: a lane that is done goes on to its part of the next batch while the
//! other still stores this one, instead of both meeting at the end of every batch and
//! waiting for their commits at once (12–17 % of the two cores idle, measured).
//!
//! The server routes every row itself; `lane_of` only decides which connection carries a
//! row. A wrong guess would cost speed, never a row.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        mpsc::{Receiver, Sender, SyncSender, channel, sync_channel},
    },
    thread::JoinHandle,
};

use postgres::{Client, Statement};

use super::{Inserted, insert_on};
use crate::{Error, Row};

/// A lane's part of a batch: the batch, shared, and the indexes of the lane's rows in it. The
/// rows stay where the sink built them: moving them into a vector per lane (688 bytes each)
/// cost more client CPU than the lanes saved. The sender keeps the indexes too, so a part is
/// never lost with a lane that ends.
pub(super) type Part = (Arc<Vec<Row>>, Arc<Vec<usize>>);

/// One lane: its connection on its own thread, fed parts of batches in order, answering
/// each in order.
pub(super) struct Lane {
    jobs: Option<SyncSender<Part>>,
    done: Receiver<Result<Inserted, Error>>,
    thread: Option<JoinHandle<()>>,
}

impl Lane {
    /// Starts lane I on CLIENT, whose COPY into `events` is prepared as COPY.
    pub(super) fn start(i: u64, client: Client, copy: Statement) -> Result<Lane, Error> {
        // One part queued behind the one being stored: with the writer at most one batch
        // ahead, it never waits to hand a part over (further ahead, it would wait here for
        // the lane, which never waits for it: answers are not bounded).
        let (jobs, take) = sync_channel(1);
        let (answer, done) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("tracer-lane{i}"))
            .spawn(move || work(client, &copy, &take, &answer))
            .map_err(|e| Error::Connect(format!("cannot start a lane's thread: {e}")))?;
        Ok(Lane { jobs: Some(jobs), done, thread: Some(thread) })
    }

    /// Hands the lane PART to store after what it has; false if it has ended.
    pub(super) fn send(&self, part: Part) -> bool {
        self.jobs.as_ref().is_some_and(|jobs| jobs.send(part).is_ok())
    }

    /// The outcome of the oldest part sent and not yet answered (waits for it).
    pub(super) fn receive(&self) -> Result<Inserted, Error> {
        // A lane ends after a panic (caught and answered); the parts queued behind it are
        // then answered here, as not stored.
        self.done.recv().unwrap_or_else(|_| Err(Error::Pg("a lane's thread ended".into())))
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Its connection ends with its thread: closed before the writer says it is done.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn work(mut client: Client, copy: &Statement, take: &Receiver<Part>, answer: &Sender<Result<Inserted, Error>>) {
    for (batch, rows) in take {
        // The indexes come from the batch's own length.
        let refs: Vec<&Row> = rows.iter().filter_map(|&i| batch.get(i)).collect();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| insert_on(&mut client, copy, &refs)));
        // After a panic the connection's state is unknown: the lane ends.
        let ended = r.is_err();
        let r = r.unwrap_or_else(|_| Err(Error::Pg("a lane's thread panicked".into())));
        if answer.send(r).is_err() || ended {
            return;
        }
    }
}

/// Hash partitions per day, and connections per writer.
pub const LANES: u64 = 2;

/// The seed PostgreSQL gives a hash partition key's extended hash function.
const PARTITION_SEED: u64 = 0x7A5B_2236_7996_DCFD;

/// The partition (remainder modulo `LANES`) PostgreSQL's hash partitioning routes a bigint
/// key to: `hashint8extended(seq, seed)` (the key folded to 32 bits, then Bob Jenkins'
/// lookup3 with the seed as a first block), combined into the row's hash from zero as
/// PostgreSQL combines key columns, modulo the modulus. Checked against a real server in
/// the tests below and in the store tests (every row's table).
pub fn lane_of(seq: i64) -> u64 {
    // The fold PostgreSQL uses so that int8 and int4 keys of one value hash alike.
    let lo = seq as u32;
    let hi = (seq >> 32) as u32;
    let k = lo ^ if seq >= 0 { hi } else { !hi };
    let h = lookup3_u32(k, PARTITION_SEED);
    // hash_combine64(0, h).
    h.wrapping_add(0x49A0_F4DD_15E5_A8E3) % LANES
}

fn lookup3_u32(k: u32, seed: u64) -> u64 {
    let init = 0x9E37_79B9u32.wrapping_add(4).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    a = a.wrapping_add(k);
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    // (x, s, w, r): x -= s; x ^= rot(s, r); s += w
    for (x, s, w, r) in [(0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8), (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)] {
        let mut v = [*a, *b, *c];
        v[x] = v[x].wrapping_sub(v[s]) ^ v[s].rotate_left(r);
        v[s] = v[s].wrapping_add(v[w]);
        [*a, *b, *c] = v;
    }
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    // (target, source, rotation): target ^= source; target -= rot(source, r)
    for (t, s, r) in [(2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14), (2, 1, 24)] {
        let mut v = [*a, *b, *c];
        v[t] = (v[t] ^ v[s]).wrapping_sub(v[s].rotate_left(r));
        [*a, *b, *c] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a PostgreSQL 15 server put these keys in a table `PARTITION BY HASH (seq)` with
    /// two partitions of modulus 2 (`SELECT seq, tableoid::regclass`).
    #[test]
    fn agrees_with_the_server() {
        let server: &[(i64, u64)] = &[
            (i64::MIN, 1),
            (-5, 1),
            (-1, 1),
            (0, 0),
            (1, 0),
            (2, 0),
            (3, 1),
            (7, 1),
            (4_294_967_296, 0),
            (1_795_000_000_000_000_000, 0),
            (1_795_000_000_000_000_001, 1),
            (1_795_000_000_000_000_002, 0),
            (i64::MAX, 0),
        ];
        for &(seq, lane) in server {
            assert_eq!(lane_of(seq), lane, "seq {seq}");
        }
    }
}
