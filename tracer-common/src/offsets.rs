//! Byte offsets of the kernel struct fields the programs read, resolved from the running
//! kernel's BTF (`/sys/kernel/btf/vmlinux`) by the loader. A field the kernel lacks is
//! `OFFSET_UNKNOWN` and the value it feeds is reported as unknown.
//!
//! Each field is declared once, in the `kernel_fields!` table below: the line yields the
//! `Offsets` member, its `Offsets::UNKNOWN` value and its BTF name (`Offsets::resolve_each`,
//! which the loader feeds from BTF). Adding a field is one line:
//! `name: "struct" "member.path",` (append `required` when the tracer must refuse to start
//! without it).

/// Marks a kernel struct field the running kernel does not have (resolved from BTF).
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// One kernel struct member as BTF names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelField {
    /// The struct's BTF name, e.g. `task_struct`.
    pub strukt: &'static str,
    /// The member, dotted through nested (anonymous) structs, e.g. `thread_info.status`.
    pub member: &'static str,
    /// Every event needs it: without it the tracer refuses to start rather than report
    /// wrong identities. Other fields degrade to "unknown".
    pub required: bool,
}

macro_rules! kernel_fields {
    (@required) => { false };
    (@required required) => { true };
    (@field $strukt:literal $member:literal $($required:ident)?) => {
        KernelField { strukt: $strukt, member: $member, required: kernel_fields!(@required $($required)?) }
    };
    ($($(#[$doc:meta])* $name:ident: $strukt:literal $member:literal $($required:ident)?,)*) => {
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Offsets {
            $($(#[$doc])* pub $name: u32,)*
        }

        impl Offsets {
            pub const UNKNOWN: Self = Self { $($name: OFFSET_UNKNOWN,)* };

            /// Every field of the table, in declaration order.
            pub const FIELDS: &'static [KernelField] = &[$(kernel_fields!(@field $strukt $member $($required)?),)*];

            /// The offsets `offset_of` gives for each field of the table.
            pub fn resolve_each(mut offset_of: impl FnMut(&KernelField) -> u32) -> Self {
                Self { $($name: offset_of(&kernel_fields!(@field $strukt $member $($required)?)),)* }
            }
        }
    };
}

kernel_fields! {
    task_real_parent: "task_struct" "real_parent" required,
    task_tgid: "task_struct" "tgid" required,
    task_mm: "task_struct" "mm",
    task_fs: "task_struct" "fs",
    task_files: "task_struct" "files",
    task_nsproxy: "task_struct" "nsproxy",
    task_cred: "task_struct" "cred",
    task_loginuid: "task_struct" "loginuid",
    task_sessionid: "task_struct" "sessionid",
    mm_arg_start: "mm_struct" "arg_start",
    mm_arg_end: "mm_struct" "arg_end",
    mm_exe_file: "mm_struct" "exe_file",
    file_f_path: "file" "f_path",
    path_mnt: "path" "mnt",
    path_dentry: "path" "dentry",
    fs_root: "fs_struct" "root",
    fs_pwd: "fs_struct" "pwd",
    files_fdt: "files_struct" "fdt",
    fdt_max_fds: "fdtable" "max_fds",
    fdt_fd: "fdtable" "fd",
    dentry_d_parent: "dentry" "d_parent",
    dentry_d_name: "dentry" "d_name",
    qstr_name: "qstr" "name",
    qstr_len: "qstr" "len",
    vfsmount_mnt_root: "vfsmount" "mnt_root",
    mount_mnt: "mount" "mnt",
    mount_mnt_parent: "mount" "mnt_parent",
    mount_mnt_mountpoint: "mount" "mnt_mountpoint",
    nsproxy_mnt_ns: "nsproxy" "mnt_ns",
    mnt_ns_inum: "mnt_namespace" "ns.inum",
    cred_uid: "cred" "uid",
    cred_gid: "cred" "gid",
    cred_suid: "cred" "suid",
    cred_sgid: "cred" "sgid",
    cred_euid: "cred" "euid",
    cred_egid: "cred" "egid",
    cred_fsuid: "cred" "fsuid",
    cred_fsgid: "cred" "fsgid",
    /// Syscall arguments and number in the pt_regs the raw syscall tracepoints pass.
    regs_di: "pt_regs" "di" required,
    regs_si: "pt_regs" "si" required,
    regs_dx: "pt_regs" "dx" required,
    regs_r10: "pt_regs" "r10" required,
    /// The fifth argument (sendto's destination, recvfrom's source address).
    regs_r8: "pt_regs" "r8",
    regs_orig_ax: "pt_regs" "orig_ax" required,
    /// i386 calls pass their arguments in bx, cx, dx, si, di, bp.
    regs_bx: "pt_regs" "bx",
    regs_cx: "pt_regs" "cx",
    /// The new image's stack pointer at exec: argc is the word it points at.
    regs_sp: "pt_regs" "sp",
    /// thread_info.status, whose TS_COMPAT bit marks a 32-bit syscall (other numbers).
    task_ti_status: "task_struct" "thread_info.status",
    /// The trusted-sshd check and the peer of its connection socket (guard's kernel source).
    file_f_inode: "file" "f_inode",
    file_private_data: "file" "private_data",
    inode_i_mode: "inode" "i_mode",
    /// `trace --rules`: the owner of an fd's file (audit's PATH ouid/ogid).
    inode_i_uid: "inode" "i_uid",
    inode_i_gid: "inode" "i_gid",
    inode_i_ino: "inode" "i_ino",
    inode_i_sb: "inode" "i_sb",
    sb_s_dev: "super_block" "s_dev",
    socket_sk: "socket" "sk",
    sk_family: "sock" "__sk_common.skc_family",
    sk_daddr: "sock" "__sk_common.skc_daddr",
    sk_v6_daddr: "sock" "__sk_common.skc_v6_daddr",
    sk_dport: "sock" "__sk_common.skc_dport",
    // `tracer protect`: which agent socket a unix connect reached (the peer's bound path).
    unix_peer: "unix_sock" "peer",
    unix_path_dentry: "unix_sock" "path.dentry",
    dentry_d_inode: "dentry" "d_inode",
    /// `tracer ci`: a process's exit status at sched_process_exit.
    task_exit_code: "task_struct" "exit_code",
    /// Why a connect failed (ECONNREFUSED, ETIMEDOUT), set before the socket closes.
    sk_err: "sock" "sk_err",
    /// A listening socket's local port (host order) and address.
    sk_num: "sock" "__sk_common.skc_num",
    sk_rcv_saddr: "sock" "__sk_common.skc_rcv_saddr",
    sk_v6_rcv_saddr: "sock" "__sk_common.skc_v6_rcv_saddr",
}

impl Default for Offsets {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

// SAFETY: Offsets is #[repr(C)] and only u32 members: no padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Offsets {}
