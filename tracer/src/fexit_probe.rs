//! Can this kernel run BPF trampolines (fexit)? Asked with a two-instruction program before
//! aya parses the kernel's BTF for the real ones: that parse costs ~15 MiB of peak RSS, paid
//! for nothing where tracing programs are refused (lockdown, LSM policy, no ftrace).

use std::os::fd::{FromRawFd, OwnedFd};

use crate::btf::Btf;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_FEXIT: u32 = 25;

/// The leading fields of the kernel's `union bpf_attr` for BPF_PROG_LOAD, in order.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
}

/// Whether an fexit program on `func` (a kernel function) loads.
pub(crate) fn fexit_allowed(btf: &Btf, func: &str) -> bool {
    let Some(id) = btf.func_id(func) else {
        return false;
    };
    // r0 = 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_TRACING,
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_TRACE_FEXIT,
        attach_btf_id: id,
        ..Default::default()
    };
    // SAFETY: attr points to a valid, initialised BPF_PROG_LOAD attribute of the size
    // passed; the kernel only reads it (and the instruction and license buffers).
    let fd =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, size_of::<ProgLoadAttr>()) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just returned this descriptor to us; dropping it closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_without_crashing_and_rejects_unknown_functions() {
        let btf = crate::btf::Btf::from_sys_fs().unwrap();
        assert!(!super::fexit_allowed(&btf, "no_such_kernel_function_xyz"));
        // Either answer is right for some kernel; this machine refuses tracing programs.
        let _ = super::fexit_allowed(&btf, "__x64_sys_openat");
    }
}
