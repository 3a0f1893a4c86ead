//! `--record-baseline FILE` keeps what a good run reached, ran and wrote; `--baseline FILE`
//! reports what a later run does beyond it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Error, summary::Summary};

const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    /// `address:port`, and `name:port` for each DNS name seen for it.
    pub endpoints: BTreeSet<String>,
    /// DNS names asked for.
    pub dns: BTreeSet<String>,
    /// Executables run (workspace-relative inside the workspace).
    pub programs: BTreeSet<String>,
    /// The top directory of each file written (`./src`, `~/.cache`, `/tmp`): fine enough to
    /// see a new place, coarse enough that temp names do not differ run to run.
    pub write_roots: BTreeSet<String>,
}

/// What a run did that its baseline did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub endpoints: Vec<String>,
    pub dns: Vec<String>,
    pub programs: Vec<String>,
    pub write_roots: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.dns.is_empty() && self.programs.is_empty() && self.write_roots.is_empty()
    }
}

fn write_root(display: &str) -> String {
    let mut parts = display.split('/');
    match (parts.next(), parts.next()) {
        // Absolute: "/tmp".
        (Some(""), Some(top)) => format!("/{top}"),
        // "~/.cache".
        (Some("~"), Some(top)) => format!("~/{top}"),
        // Workspace: "./src", or "." for files at its top.
        (Some(top), Some(_)) => format!("./{top}"),
        _ => ".".into(),
    }
}

impl Baseline {
    pub fn of(s: &Summary, ctx: &crate::Context) -> Self {
        let mut b = Baseline { version: VERSION, ..Default::default() };
        for d in &s.egress {
            b.endpoints.insert(d.endpoint());
            for n in &d.names {
                b.endpoints.insert(format!("{n}:{}", d.port));
            }
        }
        b.dns = s.dns.iter().map(|n| n.name.clone()).collect();
        for p in &s.tree {
            if let Some(exe) = &p.exe {
                b.programs.insert(ctx.display(exe.as_bytes()));
            }
        }
        b.write_roots = s.files.iter().map(|f| write_root(&f.display)).collect();
        b
    }

    /// New endpoints, names, programs and write roots of `now` (an endpoint known by any of
    /// its names is not new).
    pub fn diff(&self, now: &Baseline) -> Diff {
        let new = |a: &BTreeSet<String>, b: &BTreeSet<String>| b.difference(a).cloned().collect::<Vec<_>>();
        Diff {
            endpoints: new(&self.endpoints, &now.endpoints),
            dns: new(&self.dns, &now.dns),
            programs: new(&self.programs, &now.programs),
            write_roots: new(&self.write_roots, &now.write_roots),
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Self, Error> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::File { file: file.clone(), message: e.to_string() })?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| Error::At {
            file: file.clone(),
            line: e.line(),
            key: "baseline".into(),
            message: e.to_string(),
        })?;
        if b.version != VERSION {
            return Err(Error::File {
                file,
                message: format!("baseline version {} (this tracer writes {VERSION})", b.version),
            });
        }
        Ok(b)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a baseline serialises") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_roots_are_coarse() {
        assert_eq!(write_root("/tmp/tmp.Xy12/a"), "/tmp");
        assert_eq!(write_root("~/.cache/pip/x"), "~/.cache");
        assert_eq!(write_root("out/a.o"), "./out");
        assert_eq!(write_root("a.o"), ".");
    }
}
