//! A real PostgreSQL (Debian's postgresql-15) for the store tests: a cluster `initdb`ed in
//! a temp dir as the postgres user, listening on 127.0.0.1 (a free port), or on an address in
//! a test's network namespace, with password (SCRAM) authentication and on a private socket
//! dir, stopped on drop.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Command, Output},
};

use crate::{TempDir, netns::Netns};

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The role the tracer logs in as, owner of database `events`.
pub const USER: &str = "tracer";
pub const PASSWORD: &str = "s3cret-pw";

pub struct Postgres {
    pub dir: TempDir,
    pub port: u16,
    /// The address it listens on for TCP.
    pub host: String,
    /// The network namespace it runs in (None: this one).
    netns: Option<String>,
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
        Postgres::start_at(None, "127.0.0.1")
    }

    /// `start`, with the server in NS listening on ADDR (an address of NS). Its socket dir is
    /// still reachable from here (a socket with a path belongs to no network namespace), so
    /// `psql` works as for any other.
    pub fn start_in(ns: &Netns, addr: &str) -> Postgres {
        Postgres::start_at(Some(ns.name.clone()), addr)
    }

    fn start_at(netns: Option<String>, host: &str) -> Postgres {
        let dir = TempDir::new("pg");
        for sub in ["data", "sock"] {
            let p = dir.file(sub);
            std::fs::create_dir(&p).unwrap();
            let _ = Command::new("chown").args(["postgres:postgres"]).arg(&p).status();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { dir, port, host: host.into(), netns };
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
        if pg.netns.is_some() {
            // initdb lets in only the loopback addresses; here clients come over a veth pair.
            let hba = pg.data().join("pg_hba.conf");
            let mut conf = std::fs::read_to_string(&hba).unwrap();
            conf.push_str("host all all samenet scram-sha-256\n");
            std::fs::write(&hba, conf).unwrap();
        }
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
            "-p {} -k {} -c listen_addresses={} -c fsync=off -c max_connections=50",
            self.port,
            self.sock().display(),
            self.host
        );
        let log = self.dir.file("pg.log");
        let (data, log) = (self.data().display().to_string(), log.display().to_string());
        let pg_ctl = format!("{BIN}/pg_ctl");
        let args = [pg_ctl.as_str(), "-D", &data, "-l", &log, "-w", "-o", &opts, "start"];
        let out = match &self.netns {
            // The postmaster and its backends stay in the namespace it starts in.
            Some(ns) => Command::new("ip")
                .args(["netns", "exec", ns, "runuser", "-u", "postgres", "--"])
                .args(args)
                .output()
                .expect("ip netns exec"),
            None => as_postgres(&args),
        };
        check(out, "pg_ctl start");
    }

    /// `pg_ctl stop -m fast`: connections are closed, as in a real outage.
    pub fn stop(&self) {
        check(
            as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    /// Makes the server take TCP connections over TLS only (`hostssl`), with a certificate
    /// for the name `localhost` signed by a CA made here; restarts it. Returns that CA's
    /// certificate and another CA's, which signed nothing of the server's.
    pub fn require_tls(&self) -> (PathBuf, PathBuf) {
        let data = self.data();
        let ssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&data).output().expect("openssl");
            check(out, &format!("openssl {args:?}"));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        for (ca, cn) in [("ca", "tracer-test-ca"), ("other-ca", "tracer-test-other-ca")] {
            let (key, crt, subj) = (format!("{ca}.key"), format!("{ca}.crt"), format!("/CN={cn}"));
            let args = [&["req", "-x509"][..], &ec, &["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]];
            ssl(&args.concat());
        }
        ssl(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
        std::fs::write(
            data.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        let _ =
            Command::new("chown").args(["postgres:postgres", "server.key", "server.crt"]).current_dir(&data).status();
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlog_connections = on\n");
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        let hba = data.join("pg_hba.conf");
        let conf = std::fs::read_to_string(&hba).unwrap();
        let conf: String = conf
            .lines()
            .map(|l| l.strip_prefix("host ").map_or(l.to_owned(), |r| format!("hostssl {r}")) + "\n")
            .collect();
        std::fs::write(&hba, conf).unwrap();
        self.stop();
        self.start_again();
        // Copied out of the data dir, which only the postgres user may read.
        let out = |name: &str| {
            let to = self.dir.file(name);
            std::fs::copy(data.join(name), &to).unwrap();
            to
        };
        (out("ca.crt"), out("other-ca.crt"))
    }

    /// `postgresql://tracer@HOST:PORT/events` (no password: it comes from the environment).
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@{}:{}/events", self.host, self.port)
    }

    /// `url` with the password in it, for a writer started in the test's own process.
    pub fn url_with_password(&self) -> String {
        format!("postgresql://{USER}:{PASSWORD}@{}:{}/events", self.host, self.port)
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
