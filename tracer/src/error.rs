//! Usage errors: bad input from the user, or a machine the tracer cannot run on. `main`
//! maps them to exit status 2 (every other error is 1).

use crate::loader;

/// Bad input from the user (or a machine the tracer cannot run on): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Loads the programs; problems with the machine (not root, no BTF, missing tracepoint)
/// are usage errors.
pub(crate) fn load_or_usage_error(opts: &loader::Options) -> anyhow::Result<loader::Loaded> {
    use loader::LoadError::*;
    match loader::load(opts) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("tracer: warning: {w}");
            }
            Ok(l)
        }
        Err(e @ (NotRoot | NoBtf | Btf(_) | MissingTracepoint(_) | Tracefs(_))) => {
            Err(UsageError(e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}
