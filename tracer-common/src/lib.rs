//! Records shared by the kernel programs (`tracer-ebpf`) and the loader (`tracer`).
//!
//! Everything here is `#[repr(C)]` with fixed-width integers and explicit padding, so the
//! two sides agree on the layout byte for byte. No `bool`, no `Option`, no enums read
//! straight from kernel bytes: kinds travel as `u32` and are decoded with `TryFrom`.
#![no_std]

pub mod agg;
pub mod config;
pub mod connect;
pub mod dns;
pub mod event;
pub mod exec;
pub mod exit;
pub mod listen;
pub mod offsets;
pub mod open;
pub mod outcome;
pub mod protect;
pub mod rules;
pub mod sshlog;
pub mod syscall;
pub mod syscount;

pub use config::{Config, Offsets};
pub use event::{EventKind, Header};
