//! The tracer's database sinks, as a pure engine: one versioned schema for SQLite and
//! PostgreSQL (`schema`), batched exactly-once inserts (`sqlite`, `pg`), a bounded on-disk
//! spool for when PostgreSQL is down (`spool`) and the writer thread that ties them
//! (`writer`). The `tracer` crate only turns its events into [`Row`]s.
//!
//! Exactly once: every row carries its host's machine-id and a per-host sequence number
//! given when the event is accepted; the tables have a unique key on them and inserts skip
//! rows already there, so a batch replayed after a failure lands once.

pub mod bansync;
pub mod pg;
mod pgpass;
pub mod query;
pub mod schema;
pub mod spool;
pub mod sqlite;
pub mod writer;

use serde::{Deserialize, Serialize};

/// One event, flattened to the columns of the `events` table (the JSON format's fields,
/// plus host and sequence). Byte strings arrive as text: valid UTF-8 as is, other bytes
/// as `\xHH` (the caller's encoding, see the README).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub machine_id: String,
    pub hostname: String,
    pub seq: i64,
    pub event: String,
    /// Nanoseconds since the Unix epoch (UTC).
    pub time_ns: i64,
    /// `--key NAME` of the run (auditctl -k), if any.
    pub key: Option<String>,
    pub pid: i64,
    pub tid: i64,
    pub ppid: Option<i64>,
    pub uid: i64,
    pub gid: i64,
    pub euid: i64,
    pub egid: i64,
    /// 4294967295 when unset, None when the kernel cannot tell.
    pub auid: Option<i64>,
    pub ses: Option<i64>,
    pub comm: String,
    pub exe: Option<String>,
    pub mntns: Option<i64>,
    pub chrooted: Option<bool>,
    pub root: String,
    pub syscall: i64,
    pub ret: i64,
    pub error: Option<String>,
    // exec
    pub filename: Option<String>,
    pub cwd: Option<String>,
    /// JSON array of strings.
    pub argv: Option<String>,
    pub argv_truncated: Option<bool>,
    /// The real argument count (argv may hold fewer when cut).
    pub argc: Option<i64>,
    // open (path also for unix-socket connects)
    pub path: Option<String>,
    pub host_path: Option<String>,
    pub name: Option<String>,
    pub flags: Option<i64>,
    /// `flags` by name (`O_WRONLY|O_CREAT|O_TRUNC`), as the JSON format gives them.
    pub flags_names: Option<String>,
    pub mode: Option<i64>,
    pub base_unknown: Option<bool>,
    // log
    pub via: Option<String>,
    pub data: Option<String>,
    pub data_truncated: Option<bool>,
    // connect
    pub family: Option<String>,
    pub fd: Option<i64>,
    pub address: Option<String>,
    pub port: Option<i64>,
}

/// Where rows go, parsed from `--output`/`--input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Sqlite(std::path::PathBuf),
    /// A `postgresql://` (or `postgres://`) URL, libpq's form.
    Postgres(String),
}

impl Target {
    /// `sqlite:PATH` or `postgresql://...`; None for anything else (a plain file name).
    pub fn parse(s: &str) -> Option<Result<Target, Error>> {
        if let Some(p) = s.strip_prefix("sqlite:") {
            return Some(if p.is_empty() {
                Err(Error::Url(format!("{s}: sqlite:PATH needs a path")))
            } else {
                Ok(Target::Sqlite(p.into()))
            });
        }
        if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            return Some(pg::check_url(s).map(|()| Target::Postgres(s.to_owned())));
        }
        None
    }
}

/// This host, as rows name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub hostname: String,
    pub machine_id: String,
}

impl Host {
    /// The kernel's hostname and /etc/machine-id (the hostname again when there is none).
    pub fn this() -> Host {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        let machine_id = std::fs::read_to_string("/etc/machine-id")
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| hostname.clone());
        Host { hostname, machine_id }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad database URL: {0}")]
    Url(String),
    #[error("{0}")]
    Connect(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Pg(String),
    #[error("schema version {found} is newer than this tracer knows ({known}): upgrade the tracer")]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "schema version {found} is older than this tracer's ({known}): a writer (`tracer trace --output`, the daemon) \
         migrates it when it next connects with a role that may"
    )]
    SchemaTooOld { found: i64, known: i64 },
    #[error("{0}: no tracer schema (no tracer_schema table): not a database the tracer wrote")]
    NoSchema(String),
    #[error("spool {path}: {err}")]
    Spool { path: String, err: std::io::Error },
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Pg(pg::describe(&e))
    }
}

/// A reader's check of the version a database holds: it must be exactly this tracer's (a
/// reader never migrates).
pub(crate) fn check_read_version(found: i64) -> Result<(), Error> {
    let known = schema::latest();
    match found.cmp(&known) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Error::SchemaTooNew { found, known }),
        std::cmp::Ordering::Less => Err(Error::SchemaTooOld { found, known }),
    }
}

/// One column's value, in the kinds of `schema::COLUMNS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(Option<bool>),
    /// Nanoseconds since the epoch.
    Time(i64),
}

impl Row {
    /// The values in `schema::COLUMNS` order (an array: no allocation per row).
    pub fn values(&self) -> [Val<'_>; schema::NCOLS] {
        use Val::{Bool, Int, Text};
        fn t(s: &Option<String>) -> Option<&str> {
            s.as_deref()
        }
        [
            Text(Some(&self.machine_id)),
            Text(Some(&self.hostname)),
            Int(Some(self.seq)),
            Text(Some(&self.event)),
            Val::Time(self.time_ns),
            Int(Some(self.time_ns)),
            Text(t(&self.key)),
            Int(Some(self.pid)),
            Int(Some(self.tid)),
            Int(self.ppid),
            Int(Some(self.uid)),
            Int(Some(self.gid)),
            Int(Some(self.euid)),
            Int(Some(self.egid)),
            Int(self.auid),
            Int(self.ses),
            Text(Some(&self.comm)),
            Text(t(&self.exe)),
            Int(self.mntns),
            Bool(self.chrooted),
            Text(Some(&self.root)),
            Int(Some(self.syscall)),
            Int(Some(self.ret)),
            Text(t(&self.error)),
            Text(t(&self.filename)),
            Text(t(&self.cwd)),
            Text(t(&self.argv)),
            Bool(self.argv_truncated),
            Int(self.argc),
            Text(t(&self.path)),
            Text(t(&self.host_path)),
            Text(t(&self.name)),
            Int(self.flags),
            Text(t(&self.flags_names)),
            Int(self.mode),
            Bool(self.base_unknown),
            Text(t(&self.via)),
            Text(t(&self.data)),
            Bool(self.data_truncated),
            Text(t(&self.family)),
            Int(self.fd),
            Text(t(&self.address)),
            Int(self.port),
        ]
    }
}

/// RFC 3339 UTC with nanoseconds, as the JSON format writes times.
pub fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .unwrap_or(jiff::Timestamp::MAX)
        .strftime("%Y-%m-%dT%H:%M:%S.%NZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{COLUMNS, Kind};

    #[test]
    fn values_follow_the_columns() {
        let r = Row::default();
        let v = r.values();
        assert_eq!(v.len(), COLUMNS.len());
        for (val, (name, kind, nullable)) in v.iter().zip(COLUMNS) {
            let (k, null) = match val {
                Val::Text(x) => (Kind::Text, x.is_none()),
                Val::Int(x) => (Kind::Int, x.is_none()),
                Val::Bool(x) => (Kind::Bool, x.is_none()),
                Val::Time(_) => (Kind::Time, false),
            };
            assert_eq!(k, kind, "{name}");
            assert!(!null || nullable, "{name} is NOT NULL");
        }
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("sqlite:/x.db").unwrap().unwrap(), Target::Sqlite("/x.db".into()));
        assert!(Target::parse("sqlite:").unwrap().is_err());
        assert!(Target::parse("events.json").is_none());
        assert!(Target::parse("postgresql://u@h/db").unwrap().is_ok());
        assert!(Target::parse("postgresql://u@h:notaport/db").unwrap().is_err());
    }
}
