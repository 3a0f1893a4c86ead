//! `tracer generate man|completions DIR` (hidden): man pages and shell completions from the
//! clap definitions, for `cargo xtask install` and `cargo xtask deb`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum What {
    /// tracer.1 and one page per subcommand (tracer-trace.1, …).
    Man,
    /// tracer.bash, _tracer (zsh), tracer.fish.
    Completions,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    pub what: What,
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
}

fn man_pages(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

pub(crate) fn run(args: GenerateArgs, mut cmd: clap::Command) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&args.dir)?;
    match args.what {
        What::Man => man_pages(&cmd, "tracer", &args.dir)?,
        What::Completions => {
            use clap_complete::Shell;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                clap_complete::generate_to(shell, &mut cmd, "tracer", &args.dir)?;
            }
        }
    }
    Ok(0)
}
