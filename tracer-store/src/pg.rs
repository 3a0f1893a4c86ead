//! PostgreSQL: binary COPY of each batch straight into the day-partitioned `events`, over
//! one connection per lane (`lanes`); a replayed batch goes through a session temp table and
//! `INSERT ... ON CONFLICT DO NOTHING` (exactly once). TLS as libpq's `sslmode` says (`tls`).

mod copy;
pub mod lanes;
mod tls;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use postgres::{
    Client, Config, GenericClient, NoTls, Statement,
    config::{Host, SslMode},
    error::SqlState,
};

use crate::{
    Error, Row,
    schema::{self, Dialect},
};
use lanes::Lane;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Rejects what cannot work before anything connects: syntax, an unknown `sslmode`, a root
/// certificate that cannot be read.
pub fn check_url(url: &str) -> Result<(), Error> {
    config(url).map(|_| ())
}

/// The connection settings, what TLS they ask, and the TLS connector for them.
fn config(url: &str) -> Result<(Config, tls::Tls, MakeRustlsConnect), Error> {
    // The message of a parse error never holds the URL (which may hold a password).
    let bad = |e: &dyn std::fmt::Display| Error::Url(format!("{}: {e}", redact(url)));
    let (plain, tls) = tls::split(url).map_err(|e| bad(&e))?;
    let mut cfg = Config::from_str(&plain).map_err(|e| bad(&e))?;
    // libpq ignores sslmode over a Unix socket, where there is nothing to encrypt.
    // (A `hostaddr` is a TCP address whatever the host names.)
    let hosts = cfg.get_hosts();
    let sockets_only =
        !hosts.is_empty() && cfg.get_hostaddrs().is_empty() && hosts.iter().all(|h| matches!(h, Host::Unix(_)));
    cfg.ssl_mode(if sockets_only { SslMode::Disable } else { tls.mode.ssl_mode() });
    if cfg.get_dbname().is_none() || cfg.get_user().is_none() {
        return Err(bad(&"the form is postgresql://USER@HOST[:PORT]/DB"));
    }
    let connector = tls.connector().map_err(|e| bad(&e))?;
    Ok((cfg, tls, connector))
}

/// The URL without its password (in the credentials or a `password=` parameter), for
/// messages.
pub fn redact(url: &str) -> String {
    const NOT_SHOWN: &str = "(database URL not shown)";
    let Some(s) = url.find("://") else {
        return NOT_SHOWN.into();
    };
    let (scheme, rest) = url.split_at(s + 3);
    // Read as a postgresql:// URL whatever its scheme (a misspelled one is named too).
    let as_pg = format!("postgresql://{rest}");
    if !tls::well_formed(&as_pg) {
        return NOT_SHOWN.into();
    }
    let (head, query) = match tls::query_start(&as_pg).map(|q| q - "postgresql://".len()) {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let mut out = match head.find('@') {
        Some(at) => format!("{scheme}{}{}", head[..at].split(':').next().unwrap_or(""), &head[at..]),
        None => format!("{scheme}{head}"),
    };
    if let Some(q) = query {
        let kept: Vec<&str> = match tls::params(q) {
            Ok(ps) => ps.into_iter().filter(|(k, _)| k != "password").map(|(_, kv)| kv).collect(),
            Err(_) => vec!["(parameters not shown)"],
        };
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// A postgres error as one line: the server's message when it sent one.
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Longest wait for a server to answer a connection, unless the URL says (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence before the first keepalive probe, between probes, and probes unanswered before
/// the connection is given up: a dead peer found in 10 + 5 × 3 s while waiting for it.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// Longest time data sent may stay unacknowledged. A live server acknowledges within
/// milliseconds even when busy; one whose backend is held on a lock that long with its receive
/// buffer full is given up too, which costs a reconnect and a replay, never a row.
const UNACKED_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a new day's partition or the retention sweep waits for its lock. Both need
/// `events` to themselves (ACCESS EXCLUSIVE), and while one waits behind a long reader (a
/// fleet-wide report) every writer's rows queue behind it: given up after this instead, and
/// tried again later (the day's batch is kept and replayed; the sweep runs at the next day).
const DDL_LOCK_WAIT: &str = "2s";

/// Day D (days since the epoch, UTC): its partition's name and bounds.
struct Day {
    name: String,
    day: jiff::Timestamp,
    next: jiff::Timestamp,
}

impl Day {
    fn of(d: i64) -> Result<Day, Error> {
        let at = |d: i64| jiff::Timestamp::from_second(d * 86_400).map_err(|e| Error::Pg(e.to_string()));
        let day = at(d)?;
        Ok(Day { name: format!("events_{}", day.strftime("%Y%m%d")), day, next: at(d + 1)? })
    }
}

/// The `pg_class.relkind` of table NAME, if it exists.
fn relkind<C: GenericClient>(c: &mut C, name: &str) -> Result<Option<i8>, postgres::Error> {
    c.query_opt("SELECT relkind FROM pg_class WHERE oid = to_regclass($1::text)", &[&name]).map(|r| r.map(|r| r.get(0)))
}

/// Whether E is a statement given up on its lock (`DDL_LOCK_WAIT`).
fn lock_wait(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// A connection: password from the URL, `PGPASSWORD` or the password file; every failure
/// names the server, never the password.
pub fn client(url: &str) -> Result<Client, Error> {
    let (mut cfg, tls, connector) = config(url)?;
    if cfg.get_password().is_none() {
        let host = match cfg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let (db, user) = (cfg.get_dbname().unwrap_or(""), cfg.get_user().unwrap_or(""));
        if let Some(p) = crate::pgpass::lookup(&host, port, db, user) {
            cfg.password(p);
        }
    }
    // A server that vanishes without closing its connections (a network partition, a host
    // that dies) is noticed in about half a minute instead of the system's defaults (two
    // hours of silence before a keepalive; about 15 minutes of retransmissions for data it
    // never acknowledged), so the writer spools and a guard's fleet link reconnects. Not
    // where the URL sets its own (`connect_timeout=`, `keepalives_idle=`, `tcp_user_timeout=`:
    // seconds here).
    let query = tls::query_start(url).map_or("", |q| &url[q + 1..]);
    let keys: Vec<String> = tls::params(query).unwrap_or_default().into_iter().map(|(k, _)| k).collect();
    let set = |k: &str| keys.iter().any(|key| key == k);
    if !set("connect_timeout") {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    if !set("keepalives_idle") {
        cfg.keepalives_idle(KEEPALIVE_IDLE);
    }
    if !set("keepalives_interval") {
        cfg.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if !set("keepalives_retries") {
        cfg.keepalives_retries(KEEPALIVE_RETRIES);
    }
    if !set("tcp_user_timeout") {
        cfg.tcp_user_timeout(UNACKED_TIMEOUT);
    }
    let failed = |e: postgres::Error| Error::Connect(format!("{}: {}", redact(url), describe(&e)));
    match cfg.connect(connector) {
        // libpq's allow/prefer: a handshake that fails (a server key or protocol rustls
        // refuses, no host name to check) is tried again without TLS.
        Err(e) if tls.falls_back() && describe(&e).contains("TLS handshake") => {
            cfg.ssl_mode(SslMode::Disable);
            cfg.connect(NoTls).map_err(|plain| {
                Error::Connect(format!("{}: {}; then without TLS: {}", redact(url), describe(&e), describe(&plain)))
            })
        }
        r => r.map_err(failed),
    }
}

/// What storing rows did: how many were new, and how many the server refused for their
/// data (a value it cannot hold, a row no partition takes), which no retry would store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub new: u64,
    pub refused: u64,
    /// The server's reason for the first refusal.
    pub reason: Option<String>,
}

impl Inserted {
    fn add(&mut self, o: Inserted) {
        self.new += o.new;
        self.refused += o.refused;
        self.reason = self.reason.take().or(o.reason);
    }
}

/// A batch not wholly stored: what the lanes that committed did (`done`), the first lane's
/// failure, and the rows of the lanes that did not commit (the rest to keep; the whole batch
/// when none did).
#[derive(Debug)]
pub struct Partial {
    /// Boxed: the error path stays small.
    pub done: Box<Inserted>,
    pub error: Error,
    pub pending: Vec<Row>,
}

impl Partial {
    /// How many rows of a batch of TOTAL the lanes that committed hold: all in the database
    /// now, new or found there (`done.new` counts the new ones alone), but those refused.
    pub fn committed(&self, total: usize) -> usize {
        let refused = usize::try_from(self.done.refused).unwrap_or(usize::MAX);
        total.saturating_sub(self.pending.len()).saturating_sub(refused)
    }
}

impl From<Partial> for Error {
    fn from(p: Partial) -> Self {
        p.error
    }
}

pub struct Pg {
    /// Schema, partitions, retention and reads.
    client: Client,
    /// A writer's lanes, each a connection of its own (none for reports).
    lanes: Vec<Lane>,
    /// Batches handed to the lanes and not yet answered, oldest first.
    in_flight: VecDeque<Flight>,
    /// Day partitions this connection has seen made, and whether each is split into lanes
    /// (one made by an older tracer is not: its rows go over one connection).
    days: HashMap<i64, bool>,
    /// Keep this many days of partitions (0: keep all).
    retention_days: u32,
}

impl Pg {
    /// Connects (password from the URL, `PGPASSWORD` or the password file) and brings the
    /// schema up to date. Every failure names the server, never the password.
    pub fn connect(url: &str, retention_days: u32) -> Result<Pg, Error> {
        let client = client(url)?;
        let mut pg = Pg::new(client, retention_days);
        pg.migrate().map_err(|e| Error::Connect(format!("{}: {e}", redact(url))))?;
        let cols = schema::column_list();
        let temp = format!("CREATE TEMP TABLE IF NOT EXISTS events_in AS SELECT {cols} FROM events WITH NO DATA");
        // Prepared once: by its text it would be parsed again each time, one more round trip
        // per lane per batch.
        let copy = format!("COPY events ({cols}) FROM STDIN BINARY");
        for i in 0..lanes::LANES {
            let mut c = self::client(url)?;
            c.batch_execute(&temp)?;
            let copy = c.prepare(&copy)?;
            pg.lanes.push(Lane::start(i, c, copy)?);
        }
        pg.retain()?;
        Ok(pg)
    }

    /// Connects for reports only: nothing is created, migrated or dropped (a role with SELECT
    /// alone may report). A database without the tracer's schema, or with another version
    /// of it, is an error.
    pub fn connect_read(url: &str) -> Result<Pg, Error> {
        let mut client = client(url)?;
        let check = |client: &mut Client| -> Result<(), Error> {
            let exists: bool = client.query_one("SELECT to_regclass('tracer_schema') IS NOT NULL", &[])?.get(0);
            if !exists {
                return Err(Error::NoSchema(redact(url)));
            }
            let found: i64 = client.query_one("SELECT COALESCE(MAX(version), 0) FROM tracer_schema", &[])?.get(0);
            crate::check_read_version(found)
        };
        check(&mut client).map_err(|e| match e {
            Error::NoSchema(_) => e,
            e => Error::Connect(format!("{}: {e}", redact(url))),
        })?;
        Ok(Pg::new(client, 0))
    }

    fn new(client: Client, retention_days: u32) -> Pg {
        Pg { client, lanes: Vec::new(), in_flight: VecDeque::new(), days: HashMap::new(), retention_days }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let mut tx = self.client.transaction()?;
        // One migrator at a time across the fleet.
        tx.execute("SELECT pg_advisory_xact_lock(7140001)", &[])?;
        let exists: bool = tx.query_one("SELECT to_regclass('tracer_schema') IS NOT NULL", &[])?.get(0);
        if !exists {
            tx.batch_execute("CREATE TABLE tracer_schema (version bigint NOT NULL)")?;
        }
        let found: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM tracer_schema", &[])?.get(0);
        let all = schema::migrations(Dialect::Postgres);
        let known = all.len() as i64;
        if found > known {
            return Err(Error::SchemaTooNew { found, known });
        }
        for (i, step) in all.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            for sql in step {
                tx.batch_execute(sql)?;
            }
            tx.execute("DELETE FROM tracer_schema", &[])?;
            tx.execute("INSERT INTO tracer_schema (version) VALUES ($1)", &[&(i as i64 + 1)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The sequence number after the highest this host has stored.
    pub fn next_seq(&mut self, machine_id: &str) -> Result<i64, Error> {
        let max: Option<i64> =
            self.client.query_one("SELECT MAX(seq) FROM events WHERE machine_id = $1", &[&machine_id])?.get(0);
        Ok(max.map_or(1, |m| m + 1))
    }

    /// Stores a batch and waits for it: `send`, then `receive`. Nothing may be in flight.
    pub fn insert(&mut self, rows: &[Row]) -> Result<Inserted, Partial> {
        self.store(rows.to_vec())
    }

    /// `insert` of rows the caller gives up.
    pub fn store(&mut self, rows: Vec<Row>) -> Result<Inserted, Partial> {
        if !self.in_flight.is_empty() {
            let error = Error::Pg("a batch was stored while others were in flight".into());
            return Err(Partial { done: Box::default(), error, pending: rows });
        }
        self.send(rows)?;
        match self.receive() {
            Some((_, r)) => r,
            None => Err(Partial {
                done: Box::default(),
                error: Error::Pg("a batch sent went missing".into()),
                pending: Vec::new(),
            }),
        }
    }

    /// Batches sent and not yet received.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Hands a batch to the lanes, each lane's rows to be stored in one transaction on its
    /// own connection, after what it has already; `receive` gives the outcome. Rows already
    /// stored are skipped, rows the server refuses for their data are counted and left out
    /// (`insert_on`). Fails only when the batch's day partitions cannot be made: then none of
    /// it is in flight, and the whole batch comes back in `pending`.
    pub fn send(&mut self, rows: Vec<Row>) -> Result<(), Partial> {
        const DAY_NS: i64 = 86_400_000_000_000;
        if self.lanes.is_empty() {
            let error = Error::Pg("a connection opened for reports does not store".into());
            return Err(Partial { done: Box::default(), error, pending: rows });
        }
        let days: HashSet<i64> = rows.iter().map(|r| r.time_ns.div_euclid(DAY_NS)).collect();
        // The oldest day the sweep must spare: this batch's, and those of the batches in
        // flight, whose rows have not landed yet.
        let oldest_day = days.iter().copied().min().unwrap_or(i64::MAX);
        let spare = self.in_flight.iter().map(|f| f.oldest_day).fold(oldest_day, i64::min);
        let mut split = true;
        for d in days {
            let laned = match self.days.get(&d) {
                Some(&l) => l,
                None => match self.partition(d, spare) {
                    Ok(l) => {
                        self.days.insert(d, l);
                        l
                    }
                    Err(error) => return Err(Partial { done: Box::default(), error, pending: rows }),
                },
            };
            split &= laned;
        }
        let share = rows.len() / lanes::LANES as usize + rows.len() / 16;
        let mut parts: Vec<Vec<usize>> = (0..lanes::LANES).map(|_| Vec::with_capacity(share)).collect();
        for (i, r) in rows.iter().enumerate() {
            // A day not split (an older tracer's) takes all its rows over the first lane;
            // lane_of is below LANES, a small constant.
            let lane = if split { lanes::lane_of(r.seq) as usize } else { 0 };
            parts[lane].push(i);
        }
        let batch = Arc::new(rows);
        let parts: Vec<Arc<Vec<usize>>> = parts.into_iter().map(Arc::new).collect();
        let sent = self.lanes.iter().zip(&parts).map(|(lane, part)| lane.send((batch.clone(), part.clone()))).collect();
        self.in_flight.push_back(Flight { batch, oldest_day, parts, sent });
        Ok(())
    }

    /// The oldest batch in flight, once every lane has answered for it: its number of rows,
    /// and what was stored. When a lane failed, the error counts what the other lanes
    /// committed and holds the failed lanes' rows (`Partial::pending`), the rest for the
    /// caller to keep and store later. None: nothing in flight.
    pub fn receive(&mut self) -> Option<(usize, Result<Inserted, Partial>)> {
        let flight = self.in_flight.pop_front()?;
        let mut done = Inserted::default();
        let mut error = None;
        let mut pending = Vec::new();
        for ((lane, part), sent) in self.lanes.iter().zip(&flight.parts).zip(flight.sent) {
            let r = if sent { lane.receive() } else { Err(Error::Pg("a lane's thread ended".into())) };
            match r {
                Ok(n) => done.add(n),
                Err(e) => {
                    error = error.or(Some(e));
                    pending.extend(part.iter().filter_map(|&i| flight.batch.get(i)).cloned());
                }
            }
        }
        let r = match error {
            None => Ok(done),
            Some(error) => Err(Partial { done: Box::new(done), error, pending }),
        };
        Some((flight.batch.len(), r))
    }

    /// The partition for day D (days since the epoch, UTC), made once by whoever comes first,
    /// split into `LANES` tables by `HASH (seq)`; for today, tomorrow's too, so midnight needs
    /// no lock on `events`. Whether D is split (an older tracer may have made it whole).
    fn partition(&mut self, d: i64, spare: i64) -> Result<bool, Error> {
        // The sweep comes before the new day, never after, and spares the days of rows not
        // landed yet (SPARE on): rows older than the retention (a spool replayed after a long
        // outage) are stored, and go with the next sweep, instead of their day being dropped
        // before they land, again at every retry.
        self.sweep(spare)?;
        let split = self.make_day(&Day::of(d)?)?;
        let today = jiff::Timestamp::now().as_second().div_euclid(86_400);
        if d == today {
            // Made ahead, when a wait for the lock costs nothing: tried again tomorrow if not.
            match self.make_day(&Day::of(d + 1)?) {
                Ok(s) => {
                    self.days.insert(d + 1, s);
                }
                Err(e) if lock_wait(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(split)
    }

    /// The day's partition, made if missing (waiting at most `DDL_LOCK_WAIT` for its lock);
    /// whether it is split.
    fn make_day(&mut self, Day { name, day, next }: &Day) -> Result<bool, postgres::Error> {
        // A day found made (the common case) takes no lock. Else whoever makes it makes its
        // lanes in the same transaction (under the advisory lock), so a day found made is left
        // as it is: split or not (an older tracer's), and with whatever modulus its maker used
        // (the server routes every row; only speed differs).
        if let Some(k) = relkind(&mut self.client, name)? {
            return Ok(k.cast_unsigned() == b'p');
        }
        let mut tx = self.client.transaction()?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_WAIT}'"))?;
        tx.execute("SELECT pg_advisory_xact_lock(7140002)", &[])?;
        let split = match relkind(&mut tx, name)? {
            Some(k) => k.cast_unsigned() == b'p',
            None => {
                tx.batch_execute(&format!(
                    "CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{day}') TO ('{next}') \
                     PARTITION BY HASH (seq)"
                ))?;
                for r in 0..lanes::LANES {
                    tx.batch_execute(&format!(
                        "CREATE TABLE {name}_{r} PARTITION OF {name} FOR VALUES WITH (MODULUS {}, REMAINDER {r})",
                        lanes::LANES
                    ))?;
                }
                true
            }
        };
        tx.commit()?;
        Ok(split)
    }

    /// Drops day partitions older than the retention setting.
    pub fn retain(&mut self) -> Result<(), Error> {
        self.sweep(i64::MAX)
    }

    /// `retain`, keeping day SPARE and those after it whatever their age.
    fn sweep(&mut self, spare: i64) -> Result<(), Error> {
        if self.retention_days == 0 {
            return Ok(());
        }
        let now = jiff::Timestamp::now().as_second().div_euclid(86_400);
        let oldest = (now - i64::from(self.retention_days) + 1).min(spare);
        let cutoff = jiff::Timestamp::from_second(oldest * 86_400).map_err(|e| Error::Pg(e.to_string()))?;
        let keep_from = format!("events_{}", cutoff.strftime("%Y%m%d"));
        let rows = self.client.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{8}$' AND c.relname < $1",
            &[&keep_from],
        )?;
        for r in rows {
            let name: String = r.get(0);
            let mut tx = self.client.transaction()?;
            tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DDL_LOCK_WAIT}'"))?;
            match tx.batch_execute(&format!("DROP TABLE IF EXISTS {name}")).and_then(|()| tx.commit()) {
                Ok(()) => self.days.clear(),
                // Kept until the next sweep (the next new day, or the next start).
                Err(e) if lock_wait(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A batch handed to the lanes: its rows, the day of its oldest, each lane's part (the
/// indexes of its rows), and whether the lane took it (its thread had not ended).
struct Flight {
    batch: Arc<Vec<Row>>,
    oldest_day: i64,
    parts: Vec<Arc<Vec<usize>>>,
    sent: Vec<bool>,
}

/// Stores ROWS in one transaction on CLIENT. The common case, rows never stored: one COPY
/// straight into `events` (each row routed to its day and lane). Rows that were (a replay
/// after a lost acknowledgement) break the unique key and roll back whole; they then go
/// through a temp table and `ON CONFLICT DO NOTHING`, which skips the rows already there
/// (exactly once). Rows the server refuses for their data roll the transaction back too:
/// the rows are then stored by halves, down to the refused rows alone, which are counted and
/// left out, so one bad value never holds back the rest, nor every batch after it at each
/// retry. What was new and what was refused.
fn insert_on(client: &mut Client, copy: &Statement, rows: &[&Row]) -> Result<Inserted, Error> {
    if rows.is_empty() {
        return Ok(Inserted::default());
    }
    let cols = schema::column_list();
    let mut tx = client.transaction()?;
    match copy::copy(&mut tx, copy, rows) {
        Ok(n) => {
            tx.commit()?;
            return Ok(Inserted { new: n, ..Inserted::default() });
        }
        Err(copy::Failed::Duplicate) => drop(tx),
        Err(copy::Failed::Refused(why)) => {
            drop(tx);
            return by_halves(client, copy, rows, why);
        }
        Err(copy::Failed::Other(e)) => return Err(e),
    }
    let mut tx = client.transaction()?;
    tx.batch_execute("TRUNCATE events_in")?;
    let replay = copy::copy(&mut tx, &format!("COPY events_in ({cols}) FROM STDIN BINARY"), rows).and_then(|_| {
        let sql = format!("INSERT INTO events ({cols}) SELECT {cols} FROM events_in ON CONFLICT DO NOTHING");
        Ok(tx.execute(&sql, &[])?)
    });
    match replay {
        Ok(n) => {
            tx.commit()?;
            Ok(Inserted { new: n, ..Inserted::default() })
        }
        Err(copy::Failed::Refused(why)) => {
            drop(tx);
            by_halves(client, copy, rows, why)
        }
        Err(f) => Err(f.into()),
    }
}

/// ROWS, which the server refused for WHY, stored by halves; a single row refused is counted.
fn by_halves(client: &mut Client, copy: &Statement, rows: &[&Row], why: String) -> Result<Inserted, Error> {
    if let [_] = rows {
        return Ok(Inserted { new: 0, refused: 1, reason: Some(why) });
    }
    let (a, b) = rows.split_at(rows.len() / 2);
    let mut done = insert_on(client, copy, a)?;
    done.add(insert_on(client, copy, b)?);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("postgresql://u@127.0.0.1:5432/db").is_ok());
        assert!(check_url("postgresql://u@h/db?sslmode=disable").is_ok());
        assert!(check_url("postgresql://u@h/db?sslmode=require").is_ok());
        let e = check_url("postgresql://u:secret@h/db?sslmode=verify-full&sslrootcert=/nonexistent").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("/nonexistent") && !e.contains("secret"), "{e}");
        let e = check_url("postgresql://u:secret@h:99999/db").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(check_url("postgresql://h/db").is_err(), "no user");
        assert_eq!(redact("postgresql://u:pw@h/db"), "postgresql://u@h/db");
        assert_eq!(redact("postgres://u:pw@h/db?password=x"), "postgres://u@h/db");
        assert_eq!(redact("postgresq://u:pw@h/db"), "postgresq://u@h/db");
        // sslmode is ignored over a socket only: a hostaddr is TCP whatever the host says.
        let mode = |url: &str| config(url).unwrap().0.get_ssl_mode();
        assert_eq!(mode("postgresql://u@%2Ftmp:5/db?sslmode=require"), SslMode::Disable);
        assert_eq!(mode("postgresql://u@%2Ftmp:5/db?hostaddr=127.0.0.1&sslmode=require"), SslMode::Require);
        assert_eq!(mode("postgresql://u@/db?host=/tmp&hostaddr=127.0.0.1&sslmode=require"), SslMode::Require);
        // A password in a parameter, or with a `?` in it (the credentials end at the `@`).
        assert_eq!(redact("postgresql://u@h/db?password=hunter2&sslmode=x"), "postgresql://u@h/db?sslmode=x");
        assert_eq!(redact("postgresql://u@h/db?pass%77ord=hunter2"), "postgresql://u@h/db");
        assert_eq!(redact("postgresql://u:hun%3Fter2@h/db?sslmode=require"), "postgresql://u@h/db?sslmode=require");
        for url in [
            "postgresql://u:pw?&sslmode=hunter2@h/db",
            "postgresql://u@h/db?password=hunter2&sslmode=verify",
            "host=h password=hunter2 sslmode=bogus",
            "postgresql://h/db?password=hunter2&application_name=me@laptop",
            "postgresql://u:p@hunter2@h/db",
        ] {
            let e = check_url(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
