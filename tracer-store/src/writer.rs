//! The writer thread: the sink hands it batches over a bounded channel (so a slow database
//! slows the sink, never drops), it stores them, and for PostgreSQL spools what the
//! database cannot take and replays it, in order, when the database is back.

use std::{
    path::PathBuf,
    sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    Error, Host, Row, Target,
    pg::{Inserted, Partial, Pg},
    spool::{OnFull, Spool},
    sqlite::Sqlite,
};

/// Rows per batch (one transaction, or one per lane for PostgreSQL). Each batch costs a
/// lane a few round trips, a WAL flush the server waits for and a wait for the slower lane
/// (about 10 ms of 64 in a profile of 8192-row batches): 16384 rows halve them (measured in
/// alternating runs: about 10 % more rows per second into PostgreSQL than 8192, which gave
/// 10 % more than 4096).
pub const BATCH: usize = 16384;
/// Batches queued between the sink and the writer thread (65536 rows, as 8 of 8192 were).
/// Rows in memory at most: these, the batch being stored, the one the sink fills and one
/// waiting to be queued.
const QUEUE: usize = 4;
const RETRY: Duration = Duration::from_secs(1);
/// PostgreSQL: batches the lanes may hold beyond the one the writer waits for. Each lane goes
/// on to its part of the next batch while the writer waits for the other lanes to end this
/// one (`pg::lanes`).
const AHEAD: usize = 1;
/// A batch in flight is counted this long after the last one came, when no other follows.
const SETTLE: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    /// PostgreSQL: days of partitions kept (0: all).
    pub retention_days: u32,
    /// PostgreSQL: where batches wait while the database is down.
    pub spool_dir: PathBuf,
    pub spool_bytes: u64,
    pub on_full: OnFull,
    /// `--key NAME`, stored with every row.
    pub key: Option<String>,
}

/// What the writer has done so far, read while it runs (the daemon's status).
#[derive(Debug, Default)]
pub struct Stats {
    pub stored: AtomicU64,
    /// Events in the spool now.
    pub spooled: AtomicU64,
    /// Events dropped: to make room (drop-oldest), and refused by the database for their
    /// data (`refused`).
    pub dropped: AtomicU64,
    /// Events the database refused for their data (a value it cannot hold), left out.
    pub refused: AtomicU64,
    /// Time the sink waited on a full spool (block), in milliseconds.
    pub blocked_ms: AtomicU64,
    /// Waiting on a full spool now.
    pub blocked: AtomicBool,
}

/// What happened, for the closing line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub stored: u64,
    /// Left in the spool (replayed by the next run).
    pub spooled: u64,
    /// Dropped to make room in the spool, and refused by the database (`refused` of them).
    pub dropped: u64,
    pub refused: u64,
    /// Milliseconds the sink waited on a full spool (block).
    pub blocked_ms: u64,
    pub spool_dir: Option<PathBuf>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "store: {} stored, {} spooled, {} dropped", self.stored, self.spooled, self.dropped)?;
        if self.refused == 0 {
            write!(f, " (spool full)")?;
        } else {
            write!(f, " ({} spool full, {} refused by the database)", self.dropped - self.refused, self.refused)?;
        }
        if self.blocked_ms > 0 {
            let secs = self.blocked_ms as f64 / 1000.0;
            write!(f, "; the sink waited {secs:.1} s on the full spool for the database")?;
        }
        if let (Some(d), true) = (&self.spool_dir, self.spooled > 0) {
            write!(f, "; {} waits in {} for the next run", self.spooled, d.display())?;
        }
        Ok(())
    }
}

pub struct Writer {
    tx: Option<SyncSender<Vec<Row>>>,
    thread: Option<JoinHandle<Result<Summary, Error>>>,
    /// Set by `close`: a blocked (full) spool then takes what is left over its limit, so the
    /// end of a run never waits for the database.
    closing: Arc<AtomicBool>,
    stats: Arc<Stats>,
    buf: Vec<Row>,
    next_seq: i64,
    host: Host,
    key: Option<String>,
}

impl Writer {
    /// Opens the database (schema brought up to date) on the writer's own thread; every
    /// failure to reach or use it is returned here, before any event is taken.
    pub fn start(opts: Options) -> Result<Writer, Error> {
        let host = Host::this();
        let (tx, rx) = sync_channel::<Vec<Row>>(QUEUE);
        let (init_tx, init_rx) = sync_channel::<Result<i64, Error>>(1);
        let machine_id = host.machine_id.clone();
        let key = opts.key.clone();
        let closing = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let thread = std::thread::Builder::new()
            .name("tracer-store".into())
            .spawn({
                let (closing, stats) = (closing.clone(), stats.clone());
                move || run(opts, &machine_id, rx, init_tx, closing, stats)
            })
            .map_err(|e| Error::Connect(format!("cannot start the writer thread: {e}")))?;
        match init_rx.recv() {
            Ok(Ok(next_seq)) => {
                // Never below the start time in ns: two runs on one host at once (a daemon and
                // a `trace`) cannot meet, as no run makes an event per nanosecond.
                let next_seq = next_seq.max(start_ns());
                Ok(Writer {
                    tx: Some(tx),
                    thread: Some(thread),
                    closing,
                    stats,
                    buf: Vec::with_capacity(BATCH),
                    next_seq,
                    host,
                    key,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(thread.join().map_or_else(
                |_| Error::Connect("the writer thread panicked".into()),
                |r| r.err().unwrap_or_else(|| Error::Connect("the writer thread ended".into())),
            )),
        }
    }

    /// The live counts (stored, spooled, dropped, blocked).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Set when the run ends (SIGINT/SIGTERM): a blocked full spool then takes what is
    /// left over its limit, so a sink waiting on it is released and the run can stop.
    pub fn closing(&self) -> Arc<AtomicBool> {
        self.closing.clone()
    }

    /// Takes one row (host, sequence and key are filled in here).
    pub fn push(&mut self, mut row: Row) -> Result<(), Error> {
        row.seq = self.next_seq;
        self.next_seq += 1;
        row.machine_id.clone_from(&self.host.machine_id);
        row.hostname.clone_from(&self.host.hostname);
        row.key.clone_from(&self.key);
        self.buf.push(row);
        if self.buf.len() >= BATCH { self.flush() } else { Ok(()) }
    }

    /// Hands the buffered rows to the thread (blocks while it is QUEUE batches behind).
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(BATCH));
        if let Some(tx) = &self.tx
            && tx.send(batch).is_ok()
        {
            return Ok(());
        }
        // The thread ended: its error says why.
        Err(self.join().err().unwrap_or_else(|| Error::Connect("the writer thread ended".into())))
    }

    /// Flushes, waits for everything to be stored or spooled, and says what happened.
    pub fn close(mut self) -> Result<Summary, Error> {
        self.closing.store(true, Ordering::Relaxed);
        self.flush()?;
        self.join()
    }

    fn join(&mut self) -> Result<Summary, Error> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| Error::Connect("the writer thread panicked".into()))?,
            None => Err(Error::Connect("the writer thread ended".into())),
        }
    }
}

fn start_ns() -> i64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(t.as_nanos()).unwrap_or(i64::MAX / 2)
}

fn run(
    opts: Options,
    machine_id: &str,
    rx: Receiver<Vec<Row>>,
    init: SyncSender<Result<i64, Error>>,
    closing: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> Result<Summary, Error> {
    let url = match &opts.target {
        Target::Sqlite(path) => {
            let mut db = match Sqlite::open(path).and_then(|db| db.next_seq(machine_id).map(|n| (db, n))) {
                Ok((db, n)) => {
                    let _ = init.send(Ok(n));
                    db
                }
                Err(e) => {
                    let _ = init.send(Err(e));
                    return Ok(Summary::default());
                }
            };
            let mut sum = Summary::default();
            for batch in rx {
                db.insert(&batch)?;
                // Every row of the batch is in the database now (see `PgState::stored`).
                let n = batch.len() as u64;
                sum.stored += n;
                stats.stored.fetch_add(n, Ordering::Relaxed);
            }
            return Ok(sum);
        }
        Target::Postgres(url) => url.clone(),
    };
    let first = Spool::open(&opts.spool_dir, opts.spool_bytes).and_then(|spool| {
        let mut db = Pg::connect(&url, opts.retention_days)?;
        let next = db.next_seq(machine_id)?.max(spool.max_seq()?.map_or(1, |m| m + 1));
        Ok((spool, db, next))
    });
    let (spool, db) = match first {
        Ok((spool, db, next)) => {
            let _ = init.send(Ok(next));
            (spool, db)
        }
        Err(e) => {
            let _ = init.send(Err(e));
            return Ok(Summary::default());
        }
    };
    let mut st = PgState {
        url,
        retention: opts.retention_days,
        db: Some(db),
        spool,
        last_try: Instant::now(),
        sum: Summary::default(),
        closing,
        stats,
        said_full: false,
    };
    st.replay();
    loop {
        let msg = if st.db.is_none() || !st.spool.is_empty() {
            rx.recv_timeout(RETRY)
        } else if st.db.as_ref().is_some_and(|db| db.in_flight() > 0) {
            rx.recv_timeout(SETTLE)
        } else {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match msg {
            Ok(batch) => st.take(batch, opts.on_full)?,
            Err(RecvTimeoutError::Timeout) => {
                st.settle_all(opts.on_full)?;
                st.retry(false);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // At exit: what is in flight is counted, one more try, then whatever is left stays in
    // the spool for the next run.
    st.settle_all(opts.on_full)?;
    st.retry(true);
    st.sum.spooled = st.spool.rows();
    st.sum.dropped = st.spool.dropped() + st.sum.refused;
    st.sum.blocked_ms = st.stats.blocked_ms.load(Ordering::Relaxed);
    st.sum.spool_dir = Some(st.spool.dir().to_owned());
    Ok(st.sum)
}

struct PgState {
    url: String,
    retention: u32,
    db: Option<Pg>,
    spool: Spool,
    last_try: Instant,
    sum: Summary,
    closing: Arc<AtomicBool>,
    stats: Arc<Stats>,
    /// The "spool full" warning was given for this wait.
    said_full: bool,
}

impl PgState {
    fn take(&mut self, batch: Vec<Row>, on_full: OnFull) -> Result<(), Error> {
        self.retry(false);
        for pending in self.store_now(batch, AHEAD) {
            self.keep(pending, on_full)?;
        }
        Ok(())
    }

    /// Waits for every batch in flight and keeps what they did not store.
    fn settle_all(&mut self, on_full: OnFull) -> Result<(), Error> {
        for pending in self.settle(0) {
            self.keep(pending, on_full)?;
        }
        Ok(())
    }

    /// Keeps PENDING, rows the database has not taken, in the spool; on a full spool told
    /// to block, waits until the database takes the spool and then PENDING.
    fn keep(&mut self, mut pending: Vec<Row>, on_full: OnFull) -> Result<(), Error> {
        // Only a blocked spool is let over its limit at exit; drop-oldest keeps to it.
        let closing = self.closing.clone();
        let force = || on_full == OnFull::Block && closing.load(Ordering::Relaxed);
        let mut waited: Option<Instant> = None;
        let r = loop {
            if self.spool.push(&pending, on_full, force())? {
                break Ok(());
            }
            // Full and told to block: the sink waits (its channel fills, then the reader
            // stops reading and the kernel ring counts what it cannot hold) until the
            // database takes the spool.
            if waited.is_none() {
                waited = Some(Instant::now());
                self.stats.blocked.store(true, Ordering::Relaxed);
                if !self.said_full {
                    self.said_full = true;
                    eprintln!(
                        "tracer: warning: spool {} full ({} events): waiting for the database (--spool-full block); \
                         events the kernel cannot hold meanwhile are counted as lost",
                        self.spool.dir().display(),
                        self.spool.rows()
                    );
                }
            }
            std::thread::sleep(RETRY);
            self.retry(false);
            // After a lane committed, only the other lanes' rows are left (spooled and, with
            // drop-oldest, dropped and counted, without the rows already stored).
            pending = self.store_now(pending, 0).into_iter().flatten().collect();
            if pending.is_empty() {
                break Ok(());
            }
        };
        if let Some(t) = waited {
            let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.stats.blocked_ms.fetch_add(ms, Ordering::Relaxed);
            self.stats.blocked.store(false, Ordering::Relaxed);
            self.said_full = false;
            eprintln!("tracer: the sink goes on after waiting {:.1} s on the full spool", ms as f64 / 1000.0);
        }
        self.counts();
        r
    }

    /// Hands BATCH to the database, if it is up and nothing waits before it in the spool,
    /// and counts what is in flight down to AHEAD batches. What is left to keep, oldest
    /// first: the batch itself when it could not be sent; after a batch not wholly stored,
    /// the rest of it and of every batch behind it (the database is then marked down).
    fn store_now(&mut self, batch: Vec<Row>, ahead: usize) -> Vec<Vec<Row>> {
        // While anything is spooled or the database is down, nothing is in flight.
        if !self.spool.is_empty() {
            return vec![batch];
        }
        let sent = match &mut self.db {
            Some(db) => db.send(batch),
            None => return vec![batch],
        };
        match sent {
            Ok(()) => self.settle(ahead),
            Err(p) => {
                let mut left = self.settle(0);
                left.push(p.pending);
                if self.db.is_some() {
                    self.down(&p.error);
                }
                left
            }
        }
    }

    /// Counts the batches in flight down to AHEAD (0: all). After a batch not wholly stored,
    /// every batch behind it is awaited too and the database is marked down; what they did
    /// not store is returned, oldest first.
    fn settle(&mut self, ahead: usize) -> Vec<Vec<Row>> {
        let mut left = Vec::new();
        let mut error = None;
        loop {
            let limit = if error.is_some() { 0 } else { ahead };
            let got = match &mut self.db {
                Some(db) if db.in_flight() > limit => db.receive(),
                _ => None,
            };
            let Some((total, r)) = got else { break };
            if let Some(p) = self.count(total, r) {
                if !p.pending.is_empty() {
                    left.push(p.pending);
                }
                error = error.or(Some(p.error));
            }
        }
        if let Some(e) = error {
            self.down(&e);
        }
        left
    }

    /// Counts what storing a batch of TOTAL rows did: the rows the database refused, and the
    /// rows in it now (of a batch not wholly stored, those its committed lanes hold, whether
    /// or not the batch is done). The failure, with the rows left to keep.
    fn count(&mut self, total: usize, r: Result<Inserted, Partial>) -> Option<Partial> {
        match r {
            Ok(done) => {
                let refused = self.refused(&done);
                self.stored(total - refused);
                None
            }
            Err(p) => {
                self.refused(&p.done);
                self.stored(p.committed(total));
                Some(p)
            }
        }
    }

    /// Counts N rows of what was handed to the writer as now in the database: all the rows of
    /// a committed batch or lane, not only the new ones. Rows a commit stored but whose
    /// acknowledgement was lost were counted as spooled (or left pending), never as stored;
    /// the replay that finds them already there counts them now, so stored, spooled and
    /// dropped account for every event once, across runs.
    fn stored(&mut self, n: usize) {
        let n = n as u64;
        self.sum.stored += n;
        self.stats.stored.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts (and says on stderr) the rows the database refused for their data: they are
    /// left out, as no retry would store them. How many.
    fn refused(&mut self, done: &Inserted) -> usize {
        if done.refused > 0 {
            self.sum.refused += done.refused;
            self.stats.refused.fetch_add(done.refused, Ordering::Relaxed);
            eprintln!(
                "tracer: warning: the database refused {} events ({}): left out and counted as dropped",
                done.refused,
                done.reason.as_deref().unwrap_or("no reason given")
            );
            self.counts();
        }
        usize::try_from(done.refused).unwrap_or(usize::MAX)
    }

    /// The spool's counts as the status shows them.
    fn counts(&self) {
        self.stats.spooled.store(self.spool.rows(), Ordering::Relaxed);
        self.stats.dropped.store(self.spool.dropped() + self.sum.refused, Ordering::Relaxed);
    }

    fn down(&mut self, e: &Error) {
        eprintln!("tracer: warning: database unavailable ({e}); spooling events in {}", self.spool.dir().display());
        self.db = None;
        self.last_try = Instant::now();
    }

    /// Reconnects (at most once per RETRY unless `now`) and replays the spool.
    fn retry(&mut self, now: bool) {
        if self.db.is_none() && (now || self.last_try.elapsed() >= RETRY) {
            self.last_try = Instant::now();
            if let Ok(db) = Pg::connect(&self.url, self.retention) {
                eprintln!("tracer: database back; replaying {} spooled events", self.spool.rows());
                self.db = Some(db);
            }
        }
        self.replay();
    }

    fn replay(&mut self) {
        while let Some(db) = &mut self.db {
            // Nothing is in flight while anything is spooled (`store_now`); were it, the
            // replay would wait for it to be counted first, to keep the order.
            if db.in_flight() > 0 {
                return;
            }
            let batch = match self.spool.front() {
                None => return,
                Some(Ok(b)) => b,
                Some(Err(e)) => return self.down(&e),
            };
            let total = batch.len();
            let r = db.store(batch);
            match self.count(total, r) {
                None => {
                    if let Err(e) = self.spool.pop_front() {
                        return self.down(&e);
                    }
                    self.counts();
                }
                // The spool's front keeps only the rows no lane committed.
                Some(p) => {
                    if p.pending.len() != total
                        && let Err(e) = self.spool.replace_front(&p.pending)
                    {
                        return self.down(&e);
                    }
                    return self.down(&p.error);
                }
            }
        }
    }
}
