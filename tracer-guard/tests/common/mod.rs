//! Test helpers: the namespaces, temp dirs and package setup shared with the end-to-end tests
//! (`tracer_tests`), plus what only tracer-guard's API needs.
#![allow(dead_code, unreachable_pub)]

pub use tracer_tests::TempDir;
pub use tracer_tests::netns::Netns;

/// Makes the guard run its firewall commands inside a test namespace.
pub trait GuardNetns {
    fn runner(&self) -> tracer_guard::CommandRunner;
}

impl GuardNetns for Netns {
    fn runner(&self) -> tracer_guard::CommandRunner {
        tracer_guard::CommandRunner::netns(&self.name)
    }
}
