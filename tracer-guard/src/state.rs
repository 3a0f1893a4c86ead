//! Persistent state in SQLite: every ban (for restore and for repeat-offender counts) and the
//! jail's counters (so `tracer guard status` can answer from another process).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::jail::ActiveBan;

pub const DEFAULT_PATH: &str = "/var/lib/tracer/guard.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Db { path: String, source: rusqlite::Error },
    #[error("state directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
}

impl StateError {
    /// The file is not an SQLite database, or a damaged one: move it aside and start afresh.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StateError::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt))
    }
}

/// Counters written by the running daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub currently_failed: u64,
    pub total_failed: u64,
    pub total_banned: u64,
    pub file_list: String,
    pub updated: i64,
    /// True while a daemon runs the jail (cleared by a clean stop).
    pub running: bool,
}

pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl State {
    /// Opens (creating if needed, with its directory) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StateError::Dir { path: dir.display().to_string(), source: e })?;
        }
        let conn = Connection::open(path).map_err(|e| Self::err(path, e))?;
        let s = State { conn, path: path.into() };
        s.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS bans (
                     id INTEGER PRIMARY KEY,
                     jail TEXT NOT NULL,
                     ip TEXT NOT NULL,
                     timeofban INTEGER NOT NULL,
                     bantime INTEGER NOT NULL,   -- seconds, negative = permanent
                     bancount INTEGER NOT NULL,  -- 1 for a first offence
                     lifted INTEGER              -- time of an early unban, NULL otherwise
                 );
                 CREATE INDEX IF NOT EXISTS bans_jail_ip ON bans(jail, ip);
                 CREATE TABLE IF NOT EXISTS counters (
                     jail TEXT PRIMARY KEY,
                     currently_failed INTEGER NOT NULL,
                     total_failed INTEGER NOT NULL,
                     total_banned INTEGER NOT NULL,
                     file_list TEXT NOT NULL,
                     updated INTEGER NOT NULL,
                     running INTEGER NOT NULL
                 );",
            )
            .map_err(|e| s.db(e))?;
        Ok(s)
    }

    fn err(path: &Path, e: rusqlite::Error) -> StateError {
        StateError::Db { path: path.display().to_string(), source: e }
    }

    fn db(&self, e: rusqlite::Error) -> StateError {
        Self::err(&self.path, e)
    }

    pub fn add_ban(&self, jail: &str, ip: IpAddr, ban: &ActiveBan) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO bans (jail, ip, timeofban, bantime, bancount) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![jail, ip.to_string(), ban.time, ban.bantime, ban.count],
            )
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    /// Records a ban of `ip` made by `make(previous ban count)` unless `ip` has an active one
    /// (then None). One IMMEDIATE transaction: concurrent `tracer guard ban` of one address
    /// store one row.
    pub fn add_ban_unless_active(
        &mut self,
        jail: &str,
        ip: IpAddr,
        now: i64,
        make: impl FnOnce(u32) -> ActiveBan,
    ) -> Result<Option<ActiveBan>, StateError> {
        let path = self.path.clone();
        let e = |e| Self::err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let ips = ip.to_string();
        let active: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM bans WHERE jail = ?1 AND ip = ?2 AND lifted IS NULL
                 AND (bantime < 0 OR timeofban + bantime > ?3)",
                params![jail, ips, now],
                |r| r.get(0),
            )
            .map_err(e)?;
        if active > 0 {
            return Ok(None);
        }
        let prev: Option<u32> = tx
            .query_row("SELECT MAX(bancount) FROM bans WHERE jail = ?1 AND ip = ?2", params![jail, ips], |r| r.get(0))
            .map_err(e)?;
        let ban = make(prev.unwrap_or(0));
        tx.execute(
            "INSERT INTO bans (jail, ip, timeofban, bantime, bancount) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![jail, ips, ban.time, ban.bantime, ban.count],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(Some(ban))
    }

    /// How many bans of `ip` were ever recorded.
    pub fn ban_rows(&self, jail: &str, ip: IpAddr) -> Result<u64, StateError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM bans WHERE jail = ?1 AND ip = ?2", params![jail, ip.to_string()], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.db(e))
    }

    /// Marks `ip`'s current bans as lifted at `now`; returns whether one was active.
    pub fn lift(&self, jail: &str, ip: IpAddr, now: i64) -> Result<bool, StateError> {
        self.conn
            .execute(
                "UPDATE bans SET lifted = ?3 WHERE jail = ?1 AND ip = ?2 AND lifted IS NULL
                 AND (bantime < 0 OR timeofban + bantime > ?3)",
                params![jail, ip.to_string(), now],
            )
            .map(|n| n > 0)
            .map_err(|e| self.db(e))
    }

    /// Bans not yet over at `now` (the latest per address).
    pub fn active_bans(&self, jail: &str, now: i64) -> Result<Vec<(IpAddr, ActiveBan)>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ip, timeofban, bantime, bancount FROM bans
                 WHERE jail = ?1 AND lifted IS NULL AND (bantime < 0 OR timeofban + bantime > ?2)
                 ORDER BY timeofban",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![jail, now], |r| {
                Ok((r.get::<_, String>(0)?, ActiveBan { time: r.get(1)?, bantime: r.get(2)?, count: r.get(3)? }))
            })
            .map_err(|e| self.db(e))?;
        let mut latest: HashMap<IpAddr, ActiveBan> = HashMap::new();
        for row in rows {
            let (ip, ban) = row.map_err(|e| self.db(e))?;
            if let Ok(ip) = ip.parse() {
                latest.insert(ip, ban);
            }
        }
        let mut v: Vec<_> = latest.into_iter().collect();
        v.sort_by_key(|(ip, b)| (b.time, *ip));
        Ok(v)
    }

    /// How many times each address was banned (fail2ban's ban count for `bantime.increment`).
    pub fn ban_counts(&self, jail: &str) -> Result<HashMap<IpAddr, u32>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT ip, MAX(bancount) FROM bans WHERE jail = ?1 GROUP BY ip")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![jail], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
            .map_err(|e| self.db(e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (ip, n) = row.map_err(|e| self.db(e))?;
            if let Ok(ip) = ip.parse() {
                out.insert(ip, n);
            }
        }
        Ok(out)
    }

    pub fn write_counters(&self, jail: &str, c: &Counters) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO counters (jail, currently_failed, total_failed, total_banned, file_list, updated, running)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(jail) DO UPDATE SET currently_failed = ?2, total_failed = ?3, total_banned = ?4,
                     file_list = ?5, updated = ?6, running = ?7",
                params![
                    jail,
                    c.currently_failed as i64,
                    c.total_failed as i64,
                    c.total_banned as i64,
                    c.file_list,
                    c.updated,
                    c.running
                ],
            )
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    pub fn counters(&self, jail: &str) -> Result<Option<Counters>, StateError> {
        self.conn
            .query_row(
                "SELECT currently_failed, total_failed, total_banned, file_list, updated, running FROM counters WHERE jail = ?1",
                params![jail],
                |r| {
                    Ok(Counters {
                        currently_failed: r.get::<_, i64>(0)? as u64,
                        total_failed: r.get::<_, i64>(1)? as u64,
                        total_banned: r.get::<_, i64>(2)? as u64,
                        file_list: r.get(3)?,
                        updated: r.get(4)?,
                        running: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.db(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_roundtrip() {
        let dir = std::env::temp_dir().join(format!("tg-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/guard.sqlite3");
        let s = State::open(&path).unwrap();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        s.add_ban("sshd", a, &ActiveBan { time: 100, bantime: 50, count: 1 }).unwrap();
        s.add_ban("sshd", a, &ActiveBan { time: 200, bantime: 100, count: 2 }).unwrap();
        s.add_ban("sshd", b, &ActiveBan { time: 100, bantime: -1, count: 1 }).unwrap();
        let act = s.active_bans("sshd", 250).unwrap();
        assert_eq!(act.len(), 2);
        assert!(act.contains(&(a, ActiveBan { time: 200, bantime: 100, count: 2 })));
        assert_eq!(s.ban_counts("sshd").unwrap()[&a], 2);
        assert!(s.lift("sshd", b, 300).unwrap());
        assert!(!s.lift("sshd", b, 300).unwrap());
        assert_eq!(s.active_bans("sshd", 260).unwrap().len(), 1);
        assert!(s.active_bans("sshd", 300).unwrap().is_empty());
        drop(s);
        let s = State::open(&path).unwrap();
        assert_eq!(s.ban_counts("sshd").unwrap().len(), 2);
        let c = Counters { total_failed: 5, file_list: "x".into(), running: true, ..Default::default() };
        s.write_counters("sshd", &c).unwrap();
        assert_eq!(s.counters("sshd").unwrap(), Some(c));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
