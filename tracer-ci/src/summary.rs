//! The facts of one job run, as the renderers and the JSON output show them. Every string
//! is escaped (`event::escape`); paths have an absolute form and a display form.

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub command: Vec<String>,
    /// `$GITHUB_WORKSPACE`, `$CI_PROJECT_DIR` or the working directory.
    pub workspace: String,
    /// CMD's own exit status or killing signal, and the tracer's exit code.
    pub exit: Exit,
    pub duration_ms: u64,
    /// Depth-first, parents before their children.
    pub processes: Vec<Process>,
    pub files: Vec<File>,
    pub sensitive_reads: Vec<SensitiveRead>,
    pub egress: Vec<Destination>,
    pub dns: Vec<DnsName>,
    pub unix_sockets: Vec<UnixSocket>,
    /// Sockets the job made listen (a server, or a backdoor).
    pub listeners: Vec<Listener>,
    pub violations: Vec<Violation>,
    /// With `--baseline`: what this run did that the baseline run did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_new: Option<crate::baseline::Diff>,
    /// Events the kernel could not deliver (ring buffer full): the summary is incomplete.
    pub events_lost: u64,
    /// Every process, quiet forks included: the chains go through them.
    #[serde(skip)]
    pub tree: Vec<Process>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Exit {
    pub status: Option<i32>,
    pub signal: Option<String>,
    /// What `tracer ci` exits with: CMD's failure, else 3 on a violation, else 0.
    pub code: i32,
    /// The tracer stopped CMD (SIGTERM/SIGINT to the tracer: a CI timeout).
    pub stopped: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub depth: usize,
    /// The last program it ran (None: a fork that never exec'ed).
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub comm: String,
    /// Milliseconds since the job started.
    pub start_ms: u64,
    /// None when its end was not seen.
    pub duration_ms: Option<u64>,
    pub status: Option<i32>,
    pub signal: Option<String>,
    pub failed: bool,
}

impl Process {
    /// argv joined for display ("[comm]" for a fork without exec).
    pub fn command(&self) -> String {
        if self.argv.is_empty() { format!("[{}]", self.comm) } else { self.argv.join(" ") }
    }
    /// "exit 0", "exit 1", "SIGTERM", "running".
    pub fn outcome(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit {s}"),
            (None, Some(sig)) => sig.clone(),
            (None, None) => "?".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct File {
    pub path: String,
    /// Workspace-relative inside the workspace, `~/`-relative in HOME, else absolute.
    pub display: String,
    /// The display form's directory, for grouping.
    pub dir: String,
    /// "created", "written", "deleted", "renamed", "renamed to X", "chmod", "mkdir".
    pub ops: Vec<String>,
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SensitiveRead {
    pub path: String,
    pub display: String,
    pub pid: u32,
    /// The errno name when the open failed (the attempt is reported all the same).
    pub error: Option<String>,
    pub chain: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Destination {
    pub address: String,
    pub port: u16,
    pub family: String,
    /// DNS names the job asked for that resolve here (when answers were seen).
    pub names: Vec<String>,
    pub pids: Vec<u32>,
    pub attempts: u32,
    pub established: u32,
    pub in_progress: u32,
    pub failed: u32,
    /// "tcp" (a handshake was seen), "udp" (connected without one), "?" (failed before).
    pub protocol: String,
    /// "established", "udp", "failed (ECONNREFUSED)", "in progress", "established 2, failed 1".
    pub outcome: String,
}

impl Destination {
    /// `address:port`, IPv6 in brackets.
    pub fn endpoint(&self) -> String {
        if self.family == "inet6" {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DnsName {
    pub name: String,
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Listener {
    pub address: String,
    pub port: u16,
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnixSocket {
    /// Abstract names start with `@`.
    pub path: String,
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// "egress", "write", "read", "program", "dns".
    pub rule: String,
    pub what: String,
    pub pid: u32,
    /// From the job's first process down to the offender: "sh job.sh (812)".
    pub chain: Vec<String>,
}

impl Summary {
    /// The process chain from the job's root down to `pid`.
    pub fn tree_chain(&self, pid: u32) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(pid);
        while let Some(p) = cur {
            let Some(proc) = self.tree.iter().rev().find(|x| x.pid == p) else { break };
            if out.len() > 64 {
                break;
            }
            let mut c = proc.command();
            if c.len() > 80 {
                let mut end = 77;
                while !c.is_char_boundary(end) {
                    end -= 1;
                }
                c.truncate(end);
                c.push_str("...");
            }
            out.push(format!("{c} ({p})"));
            cur = proc.ppid.filter(|&pp| pp != p);
        }
        out.reverse();
        out
    }
}
