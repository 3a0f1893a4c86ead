//! Ban latency against a real OpenSSH sshd: `/usr/sbin/sshd -D -e` and `tracer guard run`
//! (kernel source, nftables) in a server namespace, `sshpass` + `ssh` in a client namespace
//! joined to it by a veth pair. Each sample is one wrong password from a fresh client
//! address (`maxretry = 1`); the latency is from the bench reading sshd's `Failed password
//! ... from ADDR` on sshd's stderr pipe to it reading the guard's `Ban ADDR` (printed once
//! the nftables set holds the address). Both times are taken the same way, when a reader
//! thread gets the line from its pipe.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use super::{
    Bins,
    netns::{Netns, Proc, Scratch},
    wall_ns,
};

pub(super) struct GuardLatency {
    pub samples_ms: Vec<f64>,
    pub note: Option<String>,
}

pub(super) const SAMPLES: usize = 20;
/// A subnet no test uses (tests take 10.{147..199}.{pid}.x, 10.231.x and 10.184.x).
const NET: &str = "10.243.77";
const PORT: u16 = 2222;

#[derive(Clone, Copy, PartialEq)]
enum From {
    Sshd,
    Guard,
}

/// A line (trailing `\r` of `sshd -e` removed) with the time it was read; `None` at EOF.
type Msg = (From, u128, Option<String>);

pub(super) fn run(bins: &Bins) -> anyhow::Result<GuardLatency> {
    let help = Command::new(&bins.tracer).args(["guard", "--help"]).output()?;
    if !help.status.success() {
        return Ok(GuardLatency {
            samples_ms: vec![],
            note: Some("`tracer guard` is not available in this build".into()),
        });
    }
    // A failure of the setup is the row's note: the rest of the bench still runs.
    Ok(measure(bins).unwrap_or_else(|e| GuardLatency { samples_ms: vec![], note: Some(format!("{e:#}")) }))
}

fn pipe_lines(from: From, pipe: impl Read + Send + 'static, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send((from, wall_ns(), Some(line.trim_end().to_string()))).is_err() {
                return;
            }
        }
        let _ = tx.send((from, wall_ns(), None));
    });
}

/// Every line read so far, with its read time: a line may come before it is waited for
/// (the guard's `Ban` before sshd's line has been looked at).
#[derive(Default)]
struct Seen {
    sshd: Vec<(u128, String)>,
    guard: Vec<(u128, String)>,
    ended: Vec<From>,
}

impl Seen {
    fn of(&self, from: From) -> &[(u128, String)] {
        match from {
            From::Sshd => &self.sshd,
            From::Guard => &self.guard,
        }
    }

    /// The read time of the first line of `from` that `pred` accepts, waiting for it.
    fn wait(
        &mut self,
        rx: &mpsc::Receiver<Msg>,
        from: From,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<u128> {
        let end = Instant::now() + within;
        loop {
            if let Some((t, _)) = self.of(from).iter().find(|(_, l)| pred(l)) {
                return Some(*t);
            }
            // A closed pipe: that process has exited, nothing more will come.
            if self.ended.contains(&from) {
                return None;
            }
            let left = end.checked_duration_since(Instant::now())?;
            match rx.recv_timeout(left).ok()? {
                (f, _, None) => self.ended.push(f),
                (From::Sshd, t, Some(line)) => self.sshd.push((t, line)),
                (From::Guard, t, Some(line)) => self.guard.push((t, line)),
            }
        }
    }

    /// `what` (the row's one-line note), with the last lines of both on stderr.
    fn failed(&self, what: String) -> String {
        let last = |v: &[(u128, String)]| {
            v[v.len().saturating_sub(8)..].iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n  ")
        };
        eprintln!("guard bench: {what}; sshd said:\n  {}\nthe guard said:\n  {}", last(&self.sshd), last(&self.guard));
        what
    }
}

fn measure(bins: &Bins) -> anyhow::Result<GuardLatency> {
    // Declared first, dropped last: the processes are stopped before the namespaces go.
    let dir = Scratch::new("guard")?;
    let srv = Netns::new("tracer-bench-guard-srv")?;
    let cli = Netns::new("tracer-bench-guard-cli")?;
    let server = format!("{NET}.1");
    let clients: Vec<String> = (10..10 + SAMPLES).map(|h| format!("{NET}.{h}")).collect();
    srv.veth(&cli, &[format!("{server}/24")], &clients.iter().map(|c| format!("{c}/24")).collect::<Vec<_>>())?;

    let key = dir.file("host_ed25519");
    crate::util::check(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key))?;
    let conf = dir.file("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port {PORT}\nListenAddress {server}\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication no\nUsePAM no\nPermitRootLogin no\n\
             MaxStartups 100\nLogLevel INFO\n",
            key.display(),
            dir.file("sshd.pid").display()
        ),
    )?;
    // sshd's privilege separation directory.
    std::fs::create_dir_all("/run/sshd")?;
    let jail = dir.file("jail.local");
    std::fs::write(
        &jail,
        format!(
            "[sshd]\nenabled = true\nport = {PORT}\nmaxretry = 1\nfindtime = 10m\nbantime = 10m\n\
             banaction = nftables\nignoreip = 127.0.0.1/8 ::1\n"
        ),
    )?;

    let (tx, rx) = mpsc::channel::<Msg>();
    let mut seen = Seen::default();
    let mut sshd = Proc::spawn(
        srv.command("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )?;
    pipe_lines(From::Sshd, sshd.0.stderr.take().unwrap(), tx.clone());
    let listening = format!("Server listening on {server} port {PORT}");
    if seen.wait(&rx, From::Sshd, Duration::from_secs(10), |l| l.contains(&listening)).is_none() {
        anyhow::bail!(seen.failed("sshd did not start".into()));
    }
    let mut guard = Proc::spawn(
        srv.command(&bins.tracer)
            .args(["guard", "run", "--config"])
            .arg(&jail)
            .arg("--state")
            .arg(dir.file("state.sqlite3"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?;
    pipe_lines(From::Guard, guard.0.stdout.take().unwrap(), tx.clone());
    pipe_lines(From::Guard, guard.0.stderr.take().unwrap(), tx);
    // Printed once the kernel programs are attached and the nftables set exists.
    if seen.wait(&rx, From::Guard, Duration::from_secs(30), |l| l.contains("Jail 'sshd' started")).is_none() {
        anyhow::bail!(seen.failed("the guard did not start".into()));
    }

    let mut samples = Vec::new();
    let mut note = None;
    for client in &clients {
        wrong_password(&cli, client, &server);
        let failed = format!("from {client} port ");
        let ban = format!("] Ban {client}");
        let Some(t_failed) = seen
            .wait(&rx, From::Sshd, Duration::from_secs(10), |l| l.contains("Failed password") && l.contains(&failed))
        else {
            note = Some(seen.failed(format!("sshd wrote no `Failed password ... from {client}` within 10 s")));
            break;
        };
        let Some(t_ban) = seen.wait(&rx, From::Guard, Duration::from_secs(10), |l| l.ends_with(&ban)) else {
            note = Some(seen.failed(format!("no `Ban {client}` within 10 s of sshd's failure line")));
            break;
        };
        samples.push((t_ban as f64 - t_failed as f64) / 1e6);
    }
    drop((guard, sshd));
    Ok(GuardLatency { samples_ms: samples, note })
}

/// One password login with a wrong password from `src` (OpenSSH's client through sshpass);
/// it fails, so its exit status is not looked at. `timeout` bounds a client that hangs.
fn wrong_password(cli: &Netns, src: &str, dst: &str) {
    let _ = cli
        .command("timeout")
        .args(["20", "sshpass", "-p", "wrong-password", "ssh", "-F", "/dev/null", "-b", src])
        .args(["-p", &PORT.to_string(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-l", "nobody", dst, "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
