//! SQLite: the embedded store. WAL (readers never block the writer), one transaction per
//! batch, `INSERT OR IGNORE` on the (machine_id, seq) key.

use std::path::Path;

use rusqlite::{Connection, ToSql, types::ToSqlOutput};

use crate::{
    Error, Row, Val, rfc3339,
    schema::{self, Dialect},
};

pub struct Sqlite {
    conn: Connection,
    insert: String,
}

impl Sqlite {
    /// Opens (creating) PATH and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        let mut conn = Connection::open(path)?;
        // A row is about 600 bytes: 16 KiB pages (a new file's; an existing one keeps its
        // own) hold more of them, so inserts split and write fewer pages (~20 % less CPU per
        // row, measured with the bench's feeder); a 64 MiB cache keeps the five B-trees' inner
        // pages.
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        // WAL + NORMAL: a power loss may lose the last commits, never corrupts.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Sqlite { conn, insert: schema::sqlite_insert() })
    }

    /// Opens PATH read-only for reports: never created, never migrated; a file without the
    /// tracer's schema, or with another version of it, is an error.
    pub fn open_read(path: &Path) -> Result<Sqlite, Error> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Err(Error::Connect(format!("{}: no such database file", path.display())));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let has: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'tracer_schema'",
            [],
            |r| r.get(0),
        )?;
        if !has {
            return Err(Error::NoSchema(path.display().to_string()));
        }
        let found: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM tracer_schema", [], |r| r.get(0))?;
        crate::check_read_version(found)?;
        Ok(Sqlite { conn, insert: String::new() })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The sequence number after the highest this host has stored.
    pub fn next_seq(&self, machine_id: &str) -> Result<i64, Error> {
        let max: Option<i64> =
            self.conn.query_row("SELECT MAX(seq) FROM events WHERE machine_id = ?1", [machine_id], |r| r.get(0))?;
        Ok(max.map_or(1, |m| m + 1))
    }

    /// Stores a batch in one transaction; rows already stored are skipped. Returns how many
    /// were new.
    pub fn insert(&mut self, rows: &[Row]) -> Result<usize, Error> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            // Values bound in place, one by one: no parameter vectors per row.
            let mut st = tx.prepare_cached(&self.insert)?;
            for row in rows {
                for (i, v) in row.values().into_iter().enumerate() {
                    st.raw_bind_parameter(i + 1, SqlVal(v))?;
                }
                n += st.raw_execute()?;
            }
        }
        tx.commit()?;
        Ok(n)
    }
}

struct SqlVal<'a>(Val<'a>);

impl ToSql for SqlVal<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value;
        Ok(match self.0 {
            Val::Text(Some(t)) => ToSqlOutput::from(t),
            Val::Int(Some(i)) => ToSqlOutput::Owned(Value::Integer(i)),
            Val::Bool(Some(b)) => ToSqlOutput::Owned(Value::Integer(i64::from(b))),
            Val::Text(None) | Val::Int(None) | Val::Bool(None) => ToSqlOutput::Owned(Value::Null),
            Val::Time(ns) => ToSqlOutput::Owned(Value::Text(rfc3339(ns))),
        })
    }
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("CREATE TABLE IF NOT EXISTS tracer_schema (version INTEGER NOT NULL)", [])?;
    let found: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM tracer_schema", [], |r| r.get(0))?;
    let all = schema::migrations(Dialect::Sqlite);
    let known = all.len() as i64;
    if found > known {
        return Err(Error::SchemaTooNew { found, known });
    }
    for (i, step) in all.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        for sql in step {
            tx.execute(sql, [])?;
        }
        tx.execute("DELETE FROM tracer_schema", [])?;
        tx.execute("INSERT INTO tracer_schema (version) VALUES (?1)", [i as i64 + 1])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> Row {
        Row {
            machine_id: "m1".into(),
            hostname: "h1".into(),
            seq,
            event: "exec".into(),
            time_ns: 1_700_000_000_000_000_000 + seq,
            comm: "true".into(),
            root: "/".into(),
            argv: Some(r#"["true"]"#.into()),
            auid: Some(1000),
            ..Row::default()
        }
    }

    fn tmp(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("tracer-store-{tag}-{}.db", std::process::id()));
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
        }
        p
    }

    #[test]
    fn a_replayed_batch_lands_once() {
        let p = tmp("replay");
        let mut db = Sqlite::open(&p).unwrap();
        let batch: Vec<Row> = (1..=10).map(row).collect();
        assert_eq!(db.insert(&batch).unwrap(), 10);
        assert_eq!(db.insert(&batch[5..]).unwrap(), 0);
        let n: i64 = db.conn().query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 10);
        assert_eq!(db.next_seq("m1").unwrap(), 11);
        assert_eq!(db.next_seq("other").unwrap(), 1);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn reopening_keeps_the_version_and_a_newer_one_is_refused() {
        let p = tmp("version");
        drop(Sqlite::open(&p).unwrap());
        let db = Sqlite::open(&p).unwrap();
        let mode: String = db.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        db.conn().execute("UPDATE tracer_schema SET version = 99", []).unwrap();
        drop(db);
        assert!(matches!(Sqlite::open(&p), Err(Error::SchemaTooNew { found: 99, .. })));
        assert!(matches!(Sqlite::open_read(&p), Err(Error::SchemaTooNew { found: 99, .. })));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn a_file_made_with_the_earlier_key_tree_works_the_same() {
        let p = tmp("without-rowid");
        {
            // Version 1 as files were made before the rowid table.
            let c = Connection::open(&p).unwrap();
            let ddl = schema::migrations(Dialect::Sqlite)[0][0]
                .replace(", UNIQUE (machine_id, seq))", ", PRIMARY KEY (machine_id, seq)) WITHOUT ROWID");
            c.execute_batch(&format!(
                "CREATE TABLE tracer_schema (version INTEGER NOT NULL); INSERT INTO tracer_schema VALUES (1); {ddl};"
            ))
            .unwrap();
        }
        let mut db = Sqlite::open(&p).unwrap();
        let batch: Vec<Row> = (1..=10).map(row).collect();
        assert_eq!(db.insert(&batch).unwrap(), 10);
        assert_eq!(db.insert(&batch[3..]).unwrap(), 0, "exactly once there too");
        assert_eq!(db.next_seq("m1").unwrap(), 11);
        let sql: String =
            db.conn().query_row("SELECT sql FROM sqlite_master WHERE name = 'events'", [], |r| r.get(0)).unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "left as it was: {sql}");
        drop(db);
        let fresh = tmp("rowid");
        let db = Sqlite::open(&fresh).unwrap();
        let sql: String =
            db.conn().query_row("SELECT sql FROM sqlite_master WHERE name = 'events'", [], |r| r.get(0)).unwrap();
        assert!(!sql.contains("WITHOUT ROWID") && sql.contains("UNIQUE (machine_id, seq)"), "{sql}");
        let page: i64 = db.conn().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        assert_eq!(page, 16_384);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&fresh);
    }

    #[test]
    fn a_reader_never_creates_nor_migrates() {
        let p = tmp("reader");
        assert!(matches!(Sqlite::open_read(&p), Err(Error::Connect(_))));
        assert!(!p.exists(), "a report does not create the file");
        drop(Connection::open(&p).unwrap());
        assert!(matches!(Sqlite::open_read(&p), Err(Error::NoSchema(_))));
        drop(Sqlite::open(&p).unwrap());
        Sqlite::open(&p).unwrap().conn().execute("UPDATE tracer_schema SET version = 0", []).unwrap();
        assert!(matches!(Sqlite::open_read(&p), Err(Error::SchemaTooOld { found: 0, .. })));
        let v: i64 =
            Connection::open(&p).unwrap().query_row("SELECT version FROM tracer_schema", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 0, "the reader left the version as it was");
        let _ = std::fs::remove_file(&p);
    }
}
