//! `tracer`: exec, file-access and network tracing with auditd's per-user answers, at eBPF
//! cost. This file only parses the command line and maps errors to exit statuses:
//! 2 for bad input or an unusable machine, 1 for failures while running.

mod btf;
mod bytes;
mod cmd;
mod decode;
mod errno;
mod error;
mod event;
mod fexit_probe;
mod loader;
mod offsets;
mod openflags;
mod reader;
mod report;
mod rules;
mod runlock;
mod sink;
mod sshd_exe;
mod stream;
mod timefmt;
mod tracefs;

use clap::{Parser, Subcommand};

use crate::error::UsageError;

#[derive(Parser)]
#[command(name = "tracer", version, about = "eBPF exec/open/connect tracer with per-login-UID reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream exec, open and connect events (text, JSON lines or audit.log records).
    Trace(cmd::trace::TraceArgs),
    /// Per-login-UID report (auditloginfo layout): live, of a command's tree, or of a recorded file.
    Report(cmd::report::ReportArgs),
    /// List running processes whose root is not "/" (chroot jails).
    Roots(cmd::roots::RootsArgs),
    /// fail2ban's sshd jail fed by sshd's messages captured in the kernel: run, status, ban, unban, test-log.
    Guard(cmd::guard::GuardArgs),
    /// The long-running recorder (auditd's role): rotated logs, reload on SIGHUP, rotate on SIGUSR1.
    Daemon(cmd::daemon::DaemonArgs),
    /// Whether the daemon runs, and its counts, log file and last rotation (like auditctl -s).
    Status(cmd::status::StatusArgs),
    /// Watch SSH private-key reads and ssh-agent hijacking (ssh-key / ssh-agent events); --check, --enforce.
    Protect(cmd::protect::ProtectArgs),
    /// Trace a CI job (-- CMD): process tree with exit statuses, files changed, sensitive reads, egress; policy and baseline; Markdown/JSON summary.
    Ci(cmd::ci::CiArgs),
    /// auditctl rule files: `rules check PATH...` prints them as understood and every problem.
    Rules(cmd::rules::RulesArgs),
    /// Man pages or shell completions from these definitions (for packaging).
    #[command(hide = true)]
    Generate(cmd::generate::GenerateArgs),
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Trace(a) => cmd::trace::run(a).await,
            Command::Roots(a) => cmd::roots::run(a),
            Command::Guard(a) => cmd::guard::run(a).await,
            Command::Report(a) => cmd::report::run(a).await,
            Command::Daemon(a) => cmd::daemon::run(a).await,
            Command::Status(a) => cmd::status::run(a),
            Command::Generate(a) => cmd::generate::run(a, <Cli as clap::CommandFactory>::command()),
            Command::Protect(a) => cmd::protect::run(a).await,
            Command::Ci(a) => cmd::ci::run(a).await,
            Command::Rules(a) => cmd::rules::run(a),
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tracer: error: {e:#}");
            std::process::exit(if e.downcast_ref::<UsageError>().is_some() { 2 } else { 1 });
        }
    }
}
