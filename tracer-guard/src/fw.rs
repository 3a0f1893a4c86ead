//! Firewall backends and the command runner they use (optionally inside a network namespace).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {program}: {error}")]
    Spawn { program: String, error: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("unexpected output from {program}: {message}")]
    Output { program: String, message: String },
}

/// Runs firewall programs, possibly through a prefix such as `ip netns exec NAME`, so tests
/// (and containers) can drive a namespace's firewall and never the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandRunner {
    prefix: Vec<String>,
}

impl CommandRunner {
    /// Runs programs directly (the host's firewall).
    pub fn host() -> Self {
        CommandRunner { prefix: Vec::new() }
    }

    /// Runs programs inside network namespace `name` (`ip netns exec NAME ...`).
    pub fn netns(name: &str) -> Self {
        CommandRunner { prefix: vec!["ip".into(), "netns".into(), "exec".into(), name.into()] }
    }

    /// Runs programs behind an arbitrary prefix (e.g. `["nsenter", "-t", "1", "-n"]`).
    pub fn with_prefix(prefix: Vec<String>) -> Self {
        CommandRunner { prefix }
    }

    /// Runs `program args...`, feeding `stdin` if given; returns stdout.
    pub fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
        let mut argv: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        argv.push(program);
        argv.extend_from_slice(args);
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| FirewallError::Spawn { program: argv[0].to_string(), error: e })?;
        if let Some(input) = stdin {
            let mut si = child.stdin.take().expect("piped stdin");
            si.write_all(input.as_bytes()).map_err(|e| FirewallError::Spawn { program: program.into(), error: e })?;
        }
        let out = child.wait_with_output().map_err(|e| FirewallError::Spawn { program: program.into(), error: e })?;
        if !out.status.success() {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if let Some(input) = stdin {
                stderr.push_str(&format!("\nscript:\n{input}"));
            }
            return Err(FirewallError::Failed { command: argv.join(" "), status: out.status.to_string(), stderr });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Like [`run`](Self::run) but reports only success.
    pub fn ok(&self, program: &str, args: &[&str]) -> bool {
        self.run(program, args, None).is_ok()
    }
}

/// A ban as the firewall needs it: the address and the seconds it has left (None: permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwBan {
    pub ip: IpAddr,
    pub timeout: Option<u64>,
}

pub trait Firewall: Send {
    /// Creates the jail's firewall objects (replacing leftovers of a previous run) with `bans` in them.
    fn start(&mut self, bans: &[FwBan]) -> Result<(), FirewallError>;
    /// Adds (or refreshes) one ban.
    fn ban(&mut self, ban: FwBan) -> Result<(), FirewallError>;
    /// Removes one ban; absent is fine.
    fn unban(&mut self, ip: IpAddr) -> Result<(), FirewallError>;
    /// Removes everything `start` created.
    fn stop(&mut self) -> Result<(), FirewallError>;
    /// True if the kernel lifts bans by itself (nftables set timeouts), so a dead daemon
    /// leaves no ban behind for longer than its time.
    fn kernel_expires(&self) -> bool;
    /// True if the jail's objects exist (a daemon has started them).
    fn is_running(&self) -> bool;
    /// Addresses the firewall currently blocks.
    fn list(&self) -> Result<Vec<FwBan>, FirewallError>;
    /// The longest timeout an element can carry (None: no limit, or no timeouts at all).
    /// Longer bans get this much and are refreshed by the daemon before it runs out.
    fn max_timeout(&self) -> Option<u64> {
        None
    }
    /// What holds the bans, for status: `nftables table inet tracer_guard`.
    fn describe(&self) -> String;
}
