//! The one schema both databases share, versioned. Version N is `MIGRATIONS[N-1]`; a
//! database records its version in `tracer_schema` and is brought up to date at open, in
//! one transaction. A database newer than this tracer is refused, not guessed at.

/// A column's kind; each database spells it its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
    /// PostgreSQL: timestamptz (the partition key); SQLite: RFC 3339 text.
    Time,
}

/// How many columns `events` has (`Row::values` returns one value each).
pub const NCOLS: usize = 43;

/// The `events` columns, in `Row` order (inserts and COPY follow this order).
pub const COLUMNS: [(&str, Kind, bool); NCOLS] = [
    // (name, kind, nullable)
    ("machine_id", Kind::Text, false),
    ("hostname", Kind::Text, false),
    ("seq", Kind::Int, false),
    ("event", Kind::Text, false),
    ("time", Kind::Time, false),
    ("time_ns", Kind::Int, false),
    ("key", Kind::Text, true),
    ("pid", Kind::Int, false),
    ("tid", Kind::Int, false),
    ("ppid", Kind::Int, true),
    ("uid", Kind::Int, false),
    ("gid", Kind::Int, false),
    ("euid", Kind::Int, false),
    ("egid", Kind::Int, false),
    ("auid", Kind::Int, true),
    ("ses", Kind::Int, true),
    ("comm", Kind::Text, false),
    ("exe", Kind::Text, true),
    ("mntns", Kind::Int, true),
    ("chrooted", Kind::Bool, true),
    ("root", Kind::Text, false),
    ("syscall", Kind::Int, false),
    ("ret", Kind::Int, false),
    ("error", Kind::Text, true),
    ("filename", Kind::Text, true),
    ("cwd", Kind::Text, true),
    ("argv", Kind::Text, true),
    ("argv_truncated", Kind::Bool, true),
    ("argc", Kind::Int, true),
    ("path", Kind::Text, true),
    ("host_path", Kind::Text, true),
    ("name", Kind::Text, true),
    ("flags", Kind::Int, true),
    ("flags_names", Kind::Text, true),
    ("mode", Kind::Int, true),
    ("base_unknown", Kind::Bool, true),
    ("via", Kind::Text, true),
    ("data", Kind::Text, true),
    ("data_truncated", Kind::Bool, true),
    ("family", Kind::Text, true),
    ("fd", Kind::Int, true),
    ("address", Kind::Text, true),
    ("port", Kind::Int, true),
];

/// The questions people ask: per user over time, per key over time, per path, per program.
/// (name, columns, which rows). Only rows with a key or a path are in those two indexes
/// (`key = 'x'` and `path = '/p'` imply it, so the planner uses them): most rows have no
/// key, and execs and connects no path, and entering their NULLs cost a B-tree insertion
/// each for nothing (measured: about 15 % of PostgreSQL's CPU per row in the insert bench).
const INDEXES: &[(&str, &str, &str)] = &[
    ("events_auid_time", "auid, time", ""),
    ("events_key_time", "key, time", " WHERE key IS NOT NULL"),
    ("events_path", "path", " WHERE path IS NOT NULL"),
    ("events_exe", "exe", ""),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

fn column_ddl(d: Dialect) -> String {
    COLUMNS
        .iter()
        .map(|&(name, kind, nullable)| {
            let ty = match (d, kind) {
                (Dialect::Sqlite, Kind::Text | Kind::Time) => "TEXT",
                (Dialect::Sqlite, Kind::Int | Kind::Bool) => "INTEGER",
                (Dialect::Postgres, Kind::Text) => "text",
                (Dialect::Postgres, Kind::Int) => "bigint",
                (Dialect::Postgres, Kind::Bool) => "boolean",
                (Dialect::Postgres, Kind::Time) => "timestamptz",
            };
            format!("\"{name}\" {ty}{}", if nullable { "" } else { " NOT NULL" })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Version 1: the events table, its unique key and indexes. PostgreSQL partitions it by day
/// (partitions are made as days arrive, `pg::ensure_partitions`); a partitioned table's
/// unique key must hold the partition key, hence `time` in it (a replayed row has the same).
/// SQLite: a rowid table with a unique `(machine_id, seq)` index (rows of ~600 bytes are
/// large for a WITHOUT ROWID key tree: ~13 % less CPU per insert, measured). Files made
/// before that have `PRIMARY KEY (machine_id, seq) WITHOUT ROWID` under the same version:
/// same columns, same uniqueness, same queries, so nothing migrates and no other tracer of
/// the fleet sees a new version. Likewise the key and path indexes hold only rows with a
/// key or a path since; a database made before has them whole, and answers the same.
fn v1(d: Dialect) -> Vec<String> {
    let mut v = Vec::new();
    match d {
        Dialect::Sqlite => v.push(format!("CREATE TABLE events ({}, UNIQUE (machine_id, seq))", column_ddl(d))),
        Dialect::Postgres => v.push(format!(
            "CREATE TABLE events ({}, PRIMARY KEY (machine_id, seq, time)) PARTITION BY RANGE (time)",
            column_ddl(d)
        )),
    }
    for (name, cols, rows) in INDEXES {
        v.push(format!("CREATE INDEX {name} ON events ({cols}){rows}"));
    }
    v
}

/// Every migration, oldest first: `migrations(d)[i]` takes a database from version i to i+1.
pub fn migrations(d: Dialect) -> Vec<Vec<String>> {
    vec![v1(d)]
}

/// The schema version this tracer writes.
pub fn latest() -> i64 {
    migrations(Dialect::Sqlite).len() as i64
}

/// `INSERT` of one row in `COLUMNS` order, skipping rows already there (exactly once).
pub fn sqlite_insert() -> String {
    let names: Vec<String> = COLUMNS.iter().map(|c| format!("\"{}\"", c.0)).collect();
    let params: Vec<String> = (1..=COLUMNS.len()).map(|i| format!("?{i}")).collect();
    format!("INSERT OR IGNORE INTO events ({}) VALUES ({})", names.join(", "), params.join(", "))
}

/// The quoted column list, for COPY and INSERT ... SELECT.
pub fn column_list() -> String {
    COLUMNS.iter().map(|c| format!("\"{}\"", c.0)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_every_version() {
        assert_eq!(migrations(Dialect::Sqlite).len(), migrations(Dialect::Postgres).len());
    }

    #[test]
    fn insert_has_one_parameter_per_column() {
        assert!(sqlite_insert().ends_with(&format!("?{})", COLUMNS.len())));
    }
}
