//! Builds the kernel programs (`tracer-ebpf`, nightly + build-std + bpf-linker) into OUT_DIR,
//! where `loader.rs` embeds them.
use std::path::Path;

// A build-dependency only so cargo reruns this script when the kernel programs change.
use tracer_ebpf as _;

fn main() -> anyhow::Result<()> {
    // Read when the script runs, not when it was compiled: a build script reused from another
    // checkout's target/ must still build this checkout's kernel programs.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = Path::new(&manifest).join("../tracer-ebpf");
    let root = root.canonicalize()?;
    let root = root.to_str().ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {root:?}"))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "tracer-ebpf", root_dir: root, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
}
