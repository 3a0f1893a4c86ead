//! Builds the kernel programs (`tracer-ebpf`, nightly + build-std + bpf-linker) into OUT_DIR,
//! where `loader.rs` embeds them.
use std::path::Path;

// A build-dependency only so cargo reruns this script when the kernel programs change.
use tracer_ebpf as _;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracer-ebpf");
    let root = root.canonicalize()?;
    let root = root.to_str().ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {root:?}"))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "tracer-ebpf", root_dir: root, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
}
