//! The report's questions, answered by the database: one `GROUP BY` per section (commands,
//! roots, files, connections) per host and login UID, with the filters in `WHERE`.
//! Same SQL for both databases; only the parameter marks differ.

use crate::{Error, Target, pg::Pg, sqlite::Sqlite};

/// Which events a report covers.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Hostname or machine-id.
    pub host: Option<String>,
    /// Nanoseconds since the epoch, inclusive.
    pub since_ns: Option<i64>,
    /// Nanoseconds since the epoch, exclusive.
    pub until_ns: Option<i64>,
    /// 4294967295 for unset.
    pub auid: Option<i64>,
    pub uid: Option<i64>,
    /// Any of these process names (empty: all).
    pub comm: Vec<String>,
}

/// What a group of events is: the key of one report entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// argv as the JSON array text the store holds, the exec'd file, the process root.
    Exec { argv: String, filename: String, root: String },
    /// Host path.
    Open { path: String },
    /// `inet`/`inet6` with address and port, or `unix` with path.
    Connect { family: String, address: Option<String>, port: Option<i64>, path: Option<String> },
}

/// One report entry: how many events and how many failed, per host and login UID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub hostname: String,
    /// None: the kernel could not tell; 4294967295: unset.
    pub auid: Option<i64>,
    pub entry: Entry,
    pub count: i64,
    pub failed: i64,
}

const FAILED: &str = "COUNT(*), SUM(CASE WHEN ret < 0 THEN 1 ELSE 0 END)";

/// The WHERE clause and its parameters (as text: both databases cast them).
fn conditions(f: &Filter, mark: impl Fn(usize) -> String) -> (String, Vec<ParamVal>) {
    let mut w = String::new();
    let mut p: Vec<ParamVal> = Vec::new();
    let mut add = |sql: &str, vals: Vec<ParamVal>| {
        w.push_str(" AND ");
        let mut vals = vals.into_iter();
        for (i, part) in sql.split('?').enumerate() {
            if i > 0 {
                p.push(vals.next().expect("one value per mark"));
                w.push_str(&mark(p.len()));
            }
            w.push_str(part);
        }
    };
    if let Some(h) = &f.host {
        add("(hostname = ? OR machine_id = ?)", vec![ParamVal::Text(h.clone()), ParamVal::Text(h.clone())]);
    }
    if let Some(t) = f.since_ns {
        add("time_ns >= ?", vec![ParamVal::Int(t)]);
    }
    if let Some(t) = f.until_ns {
        add("time_ns < ?", vec![ParamVal::Int(t)]);
    }
    if let Some(a) = f.auid {
        add("auid = ?", vec![ParamVal::Int(a)]);
    }
    if let Some(u) = f.uid {
        add("uid = ?", vec![ParamVal::Int(u)]);
    }
    if !f.comm.is_empty() {
        let marks = vec!["?"; f.comm.len()].join(", ");
        add(&format!("comm IN ({marks})"), f.comm.iter().cloned().map(ParamVal::Text).collect());
    }
    (w, p)
}

#[derive(Clone, Debug)]
enum ParamVal {
    Text(String),
    Int(i64),
}

fn queries(w: &str) -> [String; 3] {
    [
        format!(
            "SELECT hostname, auid, argv, filename, root, {FAILED} FROM events WHERE event = 'exec'{w} \
             GROUP BY hostname, auid, argv, filename, root"
        ),
        format!(
            "SELECT hostname, auid, COALESCE(host_path, path), {FAILED} FROM events WHERE event = 'open'{w} \
             GROUP BY hostname, auid, COALESCE(host_path, path)"
        ),
        format!(
            "SELECT hostname, auid, family, address, port, path, {FAILED} FROM events WHERE event = 'connect'{w} \
             GROUP BY hostname, auid, family, address, port, path"
        ),
    ]
}

/// Every report entry the filter selects, from either database, read-only (never migrated).
pub fn groups(target: &Target, f: &Filter) -> Result<Vec<Group>, Error> {
    match target {
        Target::Sqlite(path) => sqlite_groups(&Sqlite::open_read(path)?, f),
        Target::Postgres(url) => pg_groups(&mut Pg::connect_read(url)?, f),
    }
}

fn sqlite_groups(db: &Sqlite, f: &Filter) -> Result<Vec<Group>, Error> {
    use rusqlite::{ToSql, types::Value};
    let (w, params) = conditions(f, |i| format!("?{i}"));
    let vals: Vec<Value> = params
        .into_iter()
        .map(|p| match p {
            ParamVal::Text(s) => Value::Text(s),
            ParamVal::Int(i) => Value::Integer(i),
        })
        .collect();
    let refs: Vec<&dyn ToSql> = vals.iter().map(|v| v as &dyn ToSql).collect();
    let [exec, open, connect] = queries(&w);
    let mut out = Vec::new();
    let conn = db.conn();
    let mut st = conn.prepare(&exec)?;
    let rows = st.query_map(refs.as_slice(), |r| {
        Ok(Group {
            hostname: r.get(0)?,
            auid: r.get(1)?,
            entry: Entry::Exec { argv: r.get(2)?, filename: r.get(3)?, root: r.get(4)? },
            count: r.get(5)?,
            failed: r.get(6)?,
        })
    })?;
    for g in rows {
        out.push(g?);
    }
    let mut st = conn.prepare(&open)?;
    let rows = st.query_map(refs.as_slice(), |r| {
        Ok(Group {
            hostname: r.get(0)?,
            auid: r.get(1)?,
            entry: Entry::Open { path: r.get(2)? },
            count: r.get(3)?,
            failed: r.get(4)?,
        })
    })?;
    for g in rows {
        out.push(g?);
    }
    let mut st = conn.prepare(&connect)?;
    let rows = st.query_map(refs.as_slice(), |r| {
        Ok(Group {
            hostname: r.get(0)?,
            auid: r.get(1)?,
            entry: Entry::Connect { family: r.get(2)?, address: r.get(3)?, port: r.get(4)?, path: r.get(5)? },
            count: r.get(6)?,
            failed: r.get(7)?,
        })
    })?;
    for g in rows {
        out.push(g?);
    }
    Ok(out)
}

fn pg_groups(db: &mut Pg, f: &Filter) -> Result<Vec<Group>, Error> {
    use postgres::types::ToSql;
    let (w, params) = conditions(f, |i| format!("${i}"));
    let boxed: Vec<Box<dyn ToSql + Sync>> = params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                ParamVal::Text(s) => Box::new(s),
                ParamVal::Int(i) => Box::new(i),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(AsRef::as_ref).collect();
    let [exec, open, connect] = queries(&w);
    let c = db.client();
    let mut out = Vec::new();
    for r in c.query(&exec, &refs)? {
        out.push(Group {
            hostname: r.get(0),
            auid: r.get(1),
            entry: Entry::Exec { argv: r.get(2), filename: r.get(3), root: r.get(4) },
            count: r.get(5),
            failed: r.get(6),
        });
    }
    for r in c.query(&open, &refs)? {
        out.push(Group {
            hostname: r.get(0),
            auid: r.get(1),
            entry: Entry::Open { path: r.get(2) },
            count: r.get(3),
            failed: r.get(4),
        });
    }
    for r in c.query(&connect, &refs)? {
        out.push(Group {
            hostname: r.get(0),
            auid: r.get(1),
            entry: Entry::Connect { family: r.get(2), address: r.get(3), port: r.get(4), path: r.get(5) },
            count: r.get(6),
            failed: r.get(7),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Row;

    #[test]
    fn groups_count_and_filter_in_sqlite() {
        let p = std::env::temp_dir().join(format!("tracer-query-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let mut db = Sqlite::open(&p).unwrap();
        let row = |seq: i64, host: &str, auid: i64, path: &str, ret: i64| Row {
            machine_id: host.into(),
            hostname: host.into(),
            seq,
            event: "open".into(),
            time_ns: seq * 1000,
            auid: Some(auid),
            ret,
            path: Some(path.into()),
            ..Row::default()
        };
        let rows = vec![
            row(1, "a", 7, "/etc/passwd", 0),
            row(2, "a", 7, "/etc/passwd", -2),
            row(3, "b", 7, "/etc/passwd", 0),
            row(4, "a", 8, "/etc/shadow", -13),
        ];
        db.insert(&rows).unwrap();
        let t = Target::Sqlite(p.clone());
        let mut all = groups(&t, &Filter::default()).unwrap();
        all.sort_by_key(|g| (g.hostname.clone(), g.auid));
        let counts: Vec<(String, i64, i64)> = all.iter().map(|g| (g.hostname.clone(), g.count, g.failed)).collect();
        assert_eq!(counts, vec![("a".into(), 2, 1), ("a".into(), 1, 1), ("b".into(), 1, 0)]);
        let f = Filter { host: Some("a".into()), auid: Some(7), since_ns: Some(2000), ..Filter::default() };
        let g = groups(&t, &f).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].count, g[0].failed), (1, 1));
        let _ = std::fs::remove_file(&p);
    }
}
