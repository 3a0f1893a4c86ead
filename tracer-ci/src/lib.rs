//! `tracer ci`'s engine: what a CI job did (process tree, files, egress, sensitive reads),
//! checked against a policy and a baseline, summed up as Markdown, text and JSON.
//!
//! Pure library: its input is [`event::Event`], which the `tracer` crate builds from the
//! kernel's records, so everything here is tested without the kernel.

pub mod baseline;
pub mod dns;
pub mod event;
pub mod model;
pub mod policy;
pub mod render;
pub mod summary;
pub mod text;

pub use baseline::Baseline;
pub use event::{ConnectResult, Event, FsOp, Peer, What};
pub use model::{Context, Job};
pub use policy::Policy;
pub use summary::Summary;

/// A bad policy or baseline file: `FILE:LINE: key: message` (the CLI exits 2, nothing runs).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}:{line}: {key}: {message}")]
    At { file: String, line: usize, key: String, message: String },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

// Used by the integration tests only.
#[cfg(test)]
use pulldown_cmark as _;
