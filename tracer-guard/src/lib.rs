//! fail2ban's sshd jail for tracer: parse sshd's log lines (from files or captured in the
//! kernel), count failures per address, ban with nftables or iptables, keep bans in SQLite.
//!
//! Entry points: [`config::load`] → [`Guard::start`] → [`Guard::feed`] / [`Guard::tick`] →
//! [`Guard::stop`]; [`testlog::test_log`] for `tracer guard test-log`; [`follow::Follower`] to
//! read auth.log; [`status::JailStatus`] for `tracer guard status`.
// The integration tests' helpers (a dev-dependency) are not used by the unit tests.
#[cfg(test)]
use tracer_tests as _;

pub mod addr;
pub mod config;
pub mod duration;
pub mod event;
pub mod follow;
pub mod fw;
pub mod guard;
pub mod iptables;
pub mod jail;
pub mod mail;
pub mod nft;
pub mod offline;
pub mod ports;
pub mod session;
pub mod sshd;
pub mod state;
pub mod status;
pub mod testlog;

pub use config::{BanAction, Config, ConfigError, JailConfig, Warning};
pub use event::{Event, Level, LogLine};
pub use fw::{CommandRunner, Firewall, FirewallError, FwBan};
pub use guard::{Guard, GuardError, GuardOptions};
pub use jail::{Jail, JailSettings, Origin};
pub use offline::Offline;
pub use sshd::{Kind, Mode, Role};
pub use status::{DaemonInfo, JailStatus};

/// Seconds since the Unix epoch, the time unit of this crate.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
