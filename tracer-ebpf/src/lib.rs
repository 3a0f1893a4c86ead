// The dependencies serve the kernel programs (the binary target), not this empty library.
#![allow(unused_crate_dependencies)]
#![no_std]
//! Empty: the kernel programs are the `tracer` binary target; this lib only lets the
//! loader crate name this package as a build dependency.
