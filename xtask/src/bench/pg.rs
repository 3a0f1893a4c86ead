//! A throwaway PostgreSQL 15 cluster for the store and fleet rows (Debian's postgresql-15,
//! initdb in a temp dir as the postgres user, trust authentication, Debian's defaults
//! otherwise: fsync on), stopped and removed on drop.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub(super) struct Cluster {
    dir: PathBuf,
    pub port: u16,
}

fn as_postgres(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("runuser").args(["-u", "postgres", "--"]).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Cluster {
    pub(super) fn start(tag: &str) -> anyhow::Result<Cluster> {
        anyhow::ensure!(Path::new(BIN).join("initdb").exists(), "PostgreSQL 15 is not installed (cargo xtask setup)");
        let dir = std::env::temp_dir().join(format!("tracer-bench-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["data", "sock"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p)?;
            crate::util::check(Command::new("chown").arg("postgres:postgres").arg(&p))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let c = Cluster { dir, port };
        let data = c.dir.join("data").display().to_string();
        as_postgres(&[&format!("{BIN}/initdb"), "-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"])?;
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", c.sock().display());
        let log = c.sock().join("pg.log").display().to_string();
        as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", &data, "-l", &log, "-w", "-o", &opts, "start"])?;
        c.psql("postgres", "CREATE DATABASE events")?;
        Ok(c)
    }

    pub(super) fn sock(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Over TCP (the tracer's own host).
    pub(super) fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/events", self.port)
    }

    /// Over the socket (guards in other network namespaces).
    pub(super) fn socket_url(&self) -> String {
        format!("postgresql://postgres@{}:{}/events", self.sock().display().to_string().replace('/', "%2F"), self.port)
    }

    /// CPU seconds the cluster has used so far: the postmaster and its live children, plus
    /// the children it has reaped (a client's backend ends with its connection).
    pub(super) fn cpu_secs(&self) -> f64 {
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap_or_default();
        let Some(pm) = pid.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else { return f64::NAN };
        // After the name: state, ppid, ... utime (12th), stime, cutime, cstime (in 1/100 s).
        let fields = |p: &str| -> Vec<String> {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().map(str::to_owned).collect()
        };
        let num = |f: &[String], i: usize| f.get(i).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
        let f = fields(&pm.to_string());
        let mut ticks = num(&f, 11) + num(&f, 12) + num(&f, 13) + num(&f, 14);
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.bytes().all(|b| b.is_ascii_digit()) {
                let f = fields(&name);
                if f.get(1).is_some_and(|pp| *pp == pm.to_string()) {
                    ticks += num(&f, 11) + num(&f, 12);
                }
            }
        }
        ticks / 100.0
    }

    pub(super) fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let (sock, port) = (self.sock().display().to_string(), self.port.to_string());
        as_postgres(&[
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &sock,
            "-p",
            &port,
            "-d",
            db,
            "-c",
            sql,
        ])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
