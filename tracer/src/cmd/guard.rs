//! `tracer guard`: fail2ban's sshd jail fed by sshd's messages captured in the kernel (or
//! by auth.log), enforced with nftables or iptables. The jail itself is the `tracer-guard`
//! library; this module is its command line: `run` (the daemon, in `guard/run.rs`),
//! `status`, `ban`, `unban` (through the running daemon's control socket, like
//! `fail2ban-client`; with no daemon, the state database and the firewall directly) and
//! `test-log` (like `fail2ban-regex`).

mod control;
mod run;

use std::{
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
};

use clap::{Args, Subcommand, ValueEnum};
use tracer_guard::{
    GuardError, GuardOptions, JailConfig, JailSettings, Mode, Offline,
    config::{self, JAIL},
    guard::KERNEL_SOURCE,
    now, offline as g,
    state::DEFAULT_PATH,
    testlog,
};

use control::{Reply, Request};

use crate::error::UsageError;

/// Where `run`, `status`, `ban` and `unban` look for the jail configuration when no
/// `--config` is given, in fail2ban's order (later files override earlier ones).
pub(crate) const CONFIG_DIR: &str = "/etc/tracer";

#[derive(Args, Debug)]
pub(crate) struct GuardArgs {
    #[command(subcommand)]
    pub command: GuardCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum GuardCommand {
    /// Run the sshd jail: count sshd's failures, ban with nftables/iptables until SIGINT/SIGTERM.
    Run(run::RunArgs),
    /// Jail status in `fail2ban-client status [JAIL]` layout.
    Status(StatusArgs),
    /// Ban an address now (`fail2ban-client set JAIL banip IP`).
    Ban(BanArgs),
    /// Lift the ban on an address (`fail2ban-client set JAIL unbanip IP`).
    Unban(BanArgs),
    /// Show what the sshd filter makes of each line of a log file (like fail2ban-regex).
    TestLog(TestLogArgs),
}

/// Options shared by the subcommands that use the jail's configuration and state.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Common {
    /// Jail configuration file (repeatable; later files override earlier ones). Default:
    /// /etc/tracer/jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, those that exist;
    /// when none does, built-in defaults with the sshd jail enabled.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// SQLite state database (bans, counters).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    pub state: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// The jail (only `sshd` exists); without it, the list of jails.
    pub jail: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub(crate) struct BanArgs {
    /// The jail (`sshd`).
    pub jail: String,
    /// IPv4 or IPv6 address.
    pub ip: String,
    /// Ban even an address that `ignoreip`/`ignoreself` exempts (refused otherwise).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub(crate) struct TestLogArgs {
    /// Log file (auth.log, secure, `sshd -e` output, or `-` for stdin).
    pub file: PathBuf,
    /// Filter mode: normal, ddos, extra, aggressive (default: the config's `mode` when
    /// --config is given, else normal).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Host names in lines: yes/warn (resolve), no/raw (not counted). Default: the config's
    /// `usedns` when --config is given, else warn (fail2ban's default).
    #[arg(long, value_parser = |s: &str| s.parse::<tracer_guard::addr::UseDns>())]
    pub usedns: Option<tracer_guard::addr::UseDns>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// List every line, not only those the filter recognises.
    #[arg(long)]
    pub all: bool,
    /// Take `mode` from this jail configuration (repeatable).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

pub(crate) async fn run(args: GuardArgs) -> anyhow::Result<i32> {
    match args.command {
        GuardCommand::Run(a) => run::run(a).await,
        GuardCommand::Status(a) => status(a),
        GuardCommand::Ban(a) => ban(a, true),
        GuardCommand::Unban(a) => ban(a, false),
        GuardCommand::TestLog(a) => test_log(a),
    }
}

/// The configuration files to read: those given, else the default ones that exist.
fn config_files(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let dir = Path::new(CONFIG_DIR);
    let in_d = |ext: &str| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("jail.d"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        v
    };
    let mut files = Vec::new();
    files.extend(Some(dir.join("jail.conf")).filter(|p| p.exists()));
    files.extend(in_d("conf"));
    files.extend(Some(dir.join("jail.local")).filter(|p| p.exists()));
    files.extend(in_d("local"));
    files
}

/// Loads the jail configuration; errors are the library's `file:line: key: message` (exit 2).
/// Without any file the built-in defaults run with the sshd jail enabled (as Debian's
/// fail2ban package enables it in jail.d/defaults-debian.conf); with files, `[sshd]` needs
/// `enabled = true` as in fail2ban.
pub(crate) fn load_config(given: &[PathBuf], quiet: bool) -> anyhow::Result<(JailConfig, Vec<PathBuf>)> {
    let files = config_files(given);
    if files.is_empty() {
        return Ok((JailConfig { enabled: true, ..Default::default() }, files));
    }
    let cfg = config::load(&files).map_err(|e| UsageError(format!("bad configuration: {e}")))?;
    if !quiet {
        for w in &cfg.warnings {
            eprintln!("tracer: warning: {w}");
        }
    }
    Ok((cfg.jail, files))
}

fn file_names(files: &[PathBuf]) -> String {
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The jail the user named must be the configured, enabled one.
fn check_jail(name: &str, jail: &JailConfig, files: &[PathBuf]) -> anyhow::Result<()> {
    if name != jail.name {
        return Err(
            UsageError(format!("Sorry but the jail '{name}' does not exist (the only jail is '{JAIL}')")).into()
        );
    }
    if !jail.enabled {
        return Err(not_enabled(files));
    }
    Ok(())
}

fn not_enabled(files: &[PathBuf]) -> anyhow::Error {
    UsageError(format!(
        "the [{JAIL}] jail is not enabled in {} (add `enabled = true` under [{JAIL}])",
        file_names(files)
    ))
    .into()
}

fn options(common: &Common) -> GuardOptions {
    GuardOptions { state_path: common.state.clone(), ..Default::default() }
}

fn runtime(e: GuardError) -> anyhow::Error {
    match e {
        GuardError::Config(c) => UsageError(format!("bad configuration: {c}")).into(),
        e => anyhow::Error::new(e),
    }
}

fn status(a: StatusArgs) -> anyhow::Result<i32> {
    let (jail, files) = load_config(&a.common.config, true)?;
    let mut out = std::io::stdout().lock();
    let Some(name) = a.jail else {
        let jails: Vec<&str> = if jail.enabled { vec![JAIL] } else { vec![] };
        match a.format {
            Format::Text => {
                write!(out, "Status\n|- Number of jail:\t{}\n`- Jail list:\t{}\n", jails.len(), jails.join(", "))?
            }
            Format::Json => writeln!(out, "{}", serde_json::json!({ "jails": jails }))?,
        }
        return Ok(0);
    };
    check_jail(&name, &jail, &files)?;
    let mut opts = options(&a.common);
    let req = Request::Status { jail: name, json: a.format == Format::Json };
    if let Some(r) = control::call(&opts.nft_table, &req)? {
        return Ok(print_reply(r));
    }
    opts.file_list = vec![KERNEL_SOURCE.into()];
    let st = g::status_via_state(&jail, &opts, now()).map_err(runtime)?;
    match a.format {
        Format::Text => write!(out, "{st}")?,
        Format::Json => writeln!(out, "{}", serde_json::to_string(&st)?)?,
    }
    Ok(0)
}

/// Prints what the daemon answered; its exit status is the command's.
fn print_reply(r: Reply) -> i32 {
    print!("{}", r.stdout);
    if !r.stderr.is_empty() {
        eprintln!("tracer: {}", r.stderr);
    }
    r.code
}

/// `ban`/`unban`: through the daemon when one runs the jail here; else the state database and,
/// only if its objects exist, the firewall, saying so. A ban nothing would enforce is refused.
fn ban(a: BanArgs, ban: bool) -> anyhow::Result<i32> {
    let (jail, files) = load_config(&a.common.config, true)?;
    check_jail(&a.jail, &jail, &files)?;
    let ip: IpAddr = tracer_guard::addr::parse_ip(a.ip.trim())
        .ok_or_else(|| UsageError(format!("'{}' is not an IP address", a.ip)))?;
    let opts = options(&a.common);
    let req = match ban {
        true => Request::Ban { jail: a.jail.clone(), ip, force: a.force },
        false => Request::Unban { jail: a.jail.clone(), ip },
    };
    if let Some(r) = control::call(&opts.nft_table, &req)? {
        return Ok(print_reply(r));
    }
    let t = now();
    if !ban {
        let (event, firewall) = g::unban_via_state(&jail, &opts, ip, t).map_err(runtime)?;
        match event {
            Some(e) => println!("{}", e.log_line(&jail.name)),
            None => println!("{:<8}[{}] {ip} is not banned", "NOTICE", jail.name),
        }
        let fw = firewall.map(|f| format!(" and in {f}")).unwrap_or_default();
        eprintln!("tracer: no guard daemon runs this jail: lifted in {}{fw} directly", a.common.state.display());
        return Ok(0);
    }
    if !a.force
        && let Some(why) = run::ignored(&JailSettings::from_config(&jail), &ip)
    {
        return Err(UsageError(why).into());
    }
    match g::ban_via_state(&jail, &opts, ip, t).map_err(runtime)? {
        Offline::Applied { event, firewall } => {
            println!("{}", event.log_line(&jail.name));
            eprintln!("tracer: no guard daemon runs this jail: the ban was put in {firewall} directly");
            Ok(0)
        }
        Offline::Already(e) => {
            println!("{}", e.log_line(&jail.name));
            Ok(0)
        }
        Offline::NoFirewall { firewall } => Err(anyhow::anyhow!(
            "no `tracer guard run` runs this jail and {firewall} does not exist: nothing would enforce the ban, so none was made (start `tracer guard run` first)"
        )),
    }
}

fn test_log(a: TestLogArgs) -> anyhow::Result<i32> {
    let cfg = if a.config.is_empty() { None } else { Some(load_config(&a.config, false)?.0) };
    let mode = a.mode.or(cfg.as_ref().map(|c| c.mode)).unwrap_or(Mode::Normal);
    let usedns = a.usedns.or(cfg.as_ref().map(|c| c.usedns)).unwrap_or_default();
    let name = a.file.display().to_string();
    let t = if a.file.as_os_str() == "-" {
        testlog::test_log(std::io::stdin().lock(), mode, usedns, "<stdin>")
    } else {
        let f = std::fs::File::open(&a.file).map_err(|e| UsageError(format!("cannot read {name}: {e}")))?;
        testlog::test_log(f, mode, usedns, &name)
    }
    .map_err(|e| anyhow::anyhow!("reading {name}: {e}"))?;
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Text => write!(out, "{}", t.render_text(a.all))?,
        Format::Json => writeln!(out, "{}", t.render_json())?,
    }
    Ok(0)
}
