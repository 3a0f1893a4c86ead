//! Fleet bans: every guard writes its bans to one shared PostgreSQL table, `tracer_bans`
//! (one row per jail and address: the latest word on it), and announces each change with
//! `NOTIFY tracer_bans`. Every guard LISTENs and applies what the others announce; a guard
//! that starts (or reconnects) reads the table for the bans in force. One thread per guard,
//! one connection, polled every 20 ms: the guard's async loop never waits on the database.

use std::{
    sync::mpsc::{Receiver, Sender, TryRecvError, channel},
    time::Duration,
};

use postgres::{Client, fallible_iterator::FallibleIterator};
use serde::{Deserialize, Serialize};

use crate::{Error, Host, pg};

/// One announcement (also the NOTIFY payload, as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetBan {
    /// "ban" or "unban".
    pub op: String,
    pub jail: String,
    pub ip: String,
    /// Unix seconds; None: permanent (or an unban).
    pub until: Option<i64>,
    pub hostname: String,
    pub machine_id: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tracer_bans (
    jail text NOT NULL, ip text NOT NULL, banned boolean NOT NULL, until bigint,
    hostname text NOT NULL, machine_id text NOT NULL, changed timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jail, ip))";

/// The guard's handle: announce local bans and unbans.
pub struct BanSync {
    tx: Sender<FleetBan>,
    host: Host,
    jail: String,
}

impl BanSync {
    /// Connects, makes the table, and returns the bans in force that other hosts made;
    /// then announcements of other hosts go to `deliver` as they arrive.
    /// `host` names this guard in the table (one guard per host and network namespace).
    pub fn start(
        url: &str,
        jail: &str,
        host: Host,
        now: i64,
        deliver: impl Fn(FleetBan) + Send + 'static,
    ) -> Result<(BanSync, Vec<FleetBan>), Error> {
        let (init_tx, init_rx) = channel();
        let (tx, rx) = channel();
        let (u, j, me) = (url.to_owned(), jail.to_owned(), host.machine_id.clone());
        std::thread::Builder::new()
            .name("tracer-bansync".into())
            .spawn(move || {
                let first = open(&u).and_then(|mut c| current(&mut c, &j, &me, now).map(|b| (c, b)));
                match first {
                    Ok((c, bans)) => {
                        let _ = init_tx.send(Ok(bans));
                        run(c, &u, &j, &me, &rx, &deliver);
                    }
                    Err(e) => {
                        let _ = init_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| Error::Connect(format!("cannot start the ban sync thread: {e}")))?;
        let bans = init_rx.recv().map_err(|_| Error::Connect("the ban sync thread ended".into()))??;
        Ok((BanSync { tx, host, jail: jail.to_owned() }, bans))
    }

    pub fn ban(&self, ip: &str, until: Option<i64>) {
        self.send("ban", ip, until);
    }

    pub fn unban(&self, ip: &str) {
        self.send("unban", ip, None);
    }

    fn send(&self, op: &str, ip: &str, until: Option<i64>) {
        let _ = self.tx.send(FleetBan {
            op: op.into(),
            jail: self.jail.clone(),
            ip: ip.into(),
            until,
            hostname: self.host.hostname.clone(),
            machine_id: self.host.machine_id.clone(),
        });
    }
}

fn open(url: &str) -> Result<Client, Error> {
    let mut c = pg::client(url)?;
    c.batch_execute("SELECT pg_advisory_lock(7140003)")?;
    let made = c.batch_execute(SCHEMA);
    c.batch_execute("SELECT pg_advisory_unlock(7140003)")?;
    made?;
    c.batch_execute("LISTEN tracer_bans")?;
    Ok(c)
}

/// Bans in force made by other hosts.
fn current(c: &mut Client, jail: &str, me: &str, now: i64) -> Result<Vec<FleetBan>, Error> {
    let rows = c.query(
        "SELECT ip, until, hostname, machine_id FROM tracer_bans \
         WHERE jail = $1 AND banned AND machine_id <> $2 AND (until IS NULL OR until > $3)",
        &[&jail, &me, &now],
    )?;
    Ok(rows
        .iter()
        .map(|r| FleetBan {
            op: "ban".into(),
            jail: jail.into(),
            ip: r.get(0),
            until: r.get(1),
            hostname: r.get(2),
            machine_id: r.get(3),
        })
        .collect())
}

fn publish(c: &mut Client, b: &FleetBan) -> Result<(), Error> {
    let mut tx = c.transaction()?;
    tx.execute(
        "INSERT INTO tracer_bans (jail, ip, banned, until, hostname, machine_id) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (jail, ip) DO UPDATE SET banned = $3, until = $4, hostname = $5, machine_id = $6, changed = now()",
        &[&b.jail, &b.ip, &(b.op == "ban"), &b.until, &b.hostname, &b.machine_id],
    )?;
    let payload = serde_json::to_string(b).expect("a FleetBan serialises");
    tx.execute("SELECT pg_notify('tracer_bans', $1)", &[&payload])?;
    tx.commit()?;
    Ok(())
}

fn run(mut c: Client, url: &str, jail: &str, me: &str, rx: &Receiver<FleetBan>, deliver: &dyn Fn(FleetBan)) {
    let mut pending: Vec<FleetBan> = Vec::new();
    loop {
        loop {
            match rx.try_recv() {
                Ok(b) => pending.push(b),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let mut ok = true;
        while let Some(b) = pending.first() {
            if publish(&mut c, b).is_err() {
                ok = false;
                break;
            }
            pending.remove(0);
        }
        if ok {
            let mut n = c.notifications();
            let mut it = n.timeout_iter(Duration::from_millis(20));
            loop {
                match it.next() {
                    Ok(Some(note)) => {
                        if let Ok(b) = serde_json::from_str::<FleetBan>(note.payload())
                            && b.jail == jail
                            && b.machine_id != me
                        {
                            deliver(b);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        if !ok || c.is_closed() {
            // Down: retry every second; once back, what is in force now is delivered again
            // (an unban missed meanwhile is not: the ban's own time then ends it).
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                if let Ok(mut n) = open(url)
                    && let Ok(bans) = current(&mut n, jail, me, i64::try_from(now).unwrap_or(i64::MAX))
                {
                    bans.into_iter().for_each(deliver);
                    c = n;
                    break;
                }
            }
        }
    }
}
