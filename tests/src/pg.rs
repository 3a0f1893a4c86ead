//! A real PostgreSQL (Debian's postgresql-15) for the store tests: a cluster `initdb`ed in
//! a temp dir as the postgres user, listening on 127.0.0.1 (a free port) with password
//! (SCRAM) authentication and on a private socket dir, stopped on drop.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Command, Output},
};

use crate::TempDir;

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The role the tracer logs in as, owner of database `events`.
pub const USER: &str = "tracer";
pub const PASSWORD: &str = "s3cret-pw";

pub struct Postgres {
    pub dir: TempDir,
    pub port: u16,
}

fn as_postgres(args: &[&str]) -> Output {
    Command::new("runuser").args(["-u", "postgres", "--"]).args(args).output().expect("runuser")
}

fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Postgres {
    /// initdb + start + role `tracer` (password) owning database `events`, and role
    /// `norights` (password) that may connect but not create tables.
    pub fn start() -> Postgres {
        let dir = TempDir::new("pg");
        for sub in ["data", "sock"] {
            let p = dir.file(sub);
            std::fs::create_dir(&p).unwrap();
            let _ = Command::new("chown").args(["postgres:postgres"]).arg(&p).status();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { dir, port };
        check(
            as_postgres(&[
                &format!("{BIN}/initdb"),
                "-D",
                pg.data().to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ]),
            "initdb",
        );
        pg.start_again();
        pg.psql("postgres", &format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
        pg.psql("postgres", &format!("CREATE DATABASE events OWNER {USER}"));
        pg.psql("postgres", &format!("CREATE ROLE norights LOGIN PASSWORD '{PASSWORD}'"));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.file("data")
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.file("sock")
    }

    /// `pg_ctl start` (waits until it accepts connections).
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.sock().display()
        );
        let log = self.dir.file("pg.log");
        check(
            as_postgres(&[
                &format!("{BIN}/pg_ctl"),
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ]),
            "pg_ctl start",
        );
    }

    /// `pg_ctl stop -m fast`: connections are closed, as in a real outage.
    pub fn stop(&self) {
        check(
            as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    /// `postgresql://tracer@127.0.0.1:PORT/events` (no password: it comes from the environment).
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/events", self.port)
    }

    /// Runs SQL as the superuser over the socket; the unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        check(
            as_postgres(&[
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.sock().to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-d",
                db,
                "-c",
                sql,
            ]),
            sql,
        )
        .trim()
        .to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ =
            as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", self.data().to_str().unwrap(), "-m", "immediate", "stop"]);
    }
}
