//! The tracer's kernel programs: one module per hook family under `probes/`, each program a
//! thin `#[tracepoint]` entry that calls a `try_*` function returning `Result`.
#![no_std]
#![no_main]
// The BPF target has no atomic read-modify-write in core (no CAS), but the instruction set has an
// atomic add: `agg.rs` reaches it through the intrinsic (the eBPF crate builds with nightly).
#![feature(core_intrinsics)]
#![allow(internal_features)]

// This package's library only lets the loader name it as a build-dependency.
use tracer_ebpf as _;

mod agg;
mod kernel;
mod maps;
mod path;
mod probes;
mod record;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// SAFETY: the kernel reads the license from the "license" section; nothing else defines
// LICENSE or puts data there.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
