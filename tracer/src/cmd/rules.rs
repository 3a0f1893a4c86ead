//! `tracer rules check PATH...`: auditctl rule files as tracer understands them (the work is
//! `tracer_rules`'s). Exit status 2 when any line is invalid or unsupported.

use std::{io::Write as _, path::PathBuf};

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub(crate) struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// Parse rule files (a directory: its *.rules in order, as augenrules): print each rule as
    /// understood (auditctl -l's form), what the control lines mean for tracer, and every
    /// problem as FILE:LINE: reason.
    Check {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub(crate) fn run(args: RulesArgs) -> anyhow::Result<i32> {
    let RulesCommand::Check { paths } = args.command;
    let check = tracer_rules::check(&paths);
    let mut out = std::io::stdout().lock();
    for r in &check.set.rules {
        writeln!(out, "{}: {}", r.at, r.describe())?;
    }
    for n in &check.set.notes {
        writeln!(out, "{}: note: {}", n.at, n.text)?;
    }
    let mut problems: Vec<String> = check.problems.iter().map(|(at, why)| format!("{at}: {why}")).collect();
    // check reports what compile would refuse; compile itself is the last word.
    if problems.is_empty()
        && let Err(e) = tracer_rules::compile(&check.set)
    {
        problems.push(e.to_string());
    }
    writeln!(out, "{} rules, {} problems", check.set.rules.len(), problems.len())?;
    drop(out);
    for p in &problems {
        eprintln!("{p}");
    }
    Ok(if problems.is_empty() { 0 } else { 2 })
}
