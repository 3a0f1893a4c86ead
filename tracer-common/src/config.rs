//! Load-time settings passed to the kernel programs as read-only globals.

/// Marks a kernel struct field the running kernel does not have (resolved from BTF).
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// `Config::filters` bits: which in-kernel filters are active.
pub const FILTER_AUID: u32 = 1 << 0;
pub const FILTER_UID: u32 = 1 << 1;
pub const FILTER_PID: u32 = 1 << 2;
pub const FILTER_COMM: u32 = 1 << 3;
/// Children forked by the tracer itself join the traced set (`tracer trace -- CMD`).
pub const FOLLOW_TRACER_CHILDREN: u32 = 1 << 4;

/// `Config::enabled` bits: which event families are produced.
pub const ENABLE_EXEC: u32 = 1 << 0;
pub const ENABLE_OPEN: u32 = 1 << 1;
pub const ENABLE_CONNECT: u32 = 1 << 2;
/// Count every system call per (auid, nr) in the kernel; no event crosses.
pub const ENABLE_SYSCOUNT: u32 = 1 << 3;
/// Capture what sshd writes to syslog or stderr (the guard's failure source).
pub const ENABLE_SSHLOG: u32 = 1 << 4;
/// Records carry only what reports use (ids, login, comm, root, the call's details): no
/// ppid, creds, mount namespace or exe, four fewer pointer chases per event.
pub const LEAN_RECORDS: u32 = 1 << 5;
/// Opens carry the working directory even for absolute names (audit's CWD record).
pub const WANT_CWD: u32 = 1 << 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The tracer's own tgid: never reported.
    pub tracer_tgid: u32,
    pub filters: u32,
    pub enabled: u32,
    pub auid: u32,
    pub uid: u32,
    pub _pad: u32,
    pub comm: [u8; 16],
    /// Tracepoint field offsets read from tracefs `format` files at load time.
    pub fork_parent_pid_off: u32,
    pub fork_child_pid_off: u32,
    pub exec_filename_off: u32,
    /// Wake the reader only once this many bytes are pending (0: on every record). Batching
    /// wakeups keeps a busy traced program from paying a context switch per event; the
    /// reader also drains on a short timer, so nothing waits long.
    pub wakeup_bytes: u32,
}

/// Byte offsets of the kernel struct fields the programs read, resolved from the running
/// kernel's BTF (`/sys/kernel/btf/vmlinux`) by the loader. A field the kernel lacks is
/// `OFFSET_UNKNOWN` and the value it feeds is reported as unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_mm: u32,
    pub task_fs: u32,
    pub task_files: u32,
    pub task_nsproxy: u32,
    pub task_cred: u32,
    pub task_loginuid: u32,
    pub task_sessionid: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_exe_file: u32,
    pub file_f_path: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub fs_root: u32,
    pub fs_pwd: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_fd: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_name: u32,
    pub qstr_name: u32,
    pub qstr_len: u32,
    pub vfsmount_mnt_root: u32,
    pub mount_mnt: u32,
    pub mount_mnt_parent: u32,
    pub mount_mnt_mountpoint: u32,
    pub nsproxy_mnt_ns: u32,
    pub mnt_ns_inum: u32,
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub cred_suid: u32,
    pub cred_sgid: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub cred_fsuid: u32,
    pub cred_fsgid: u32,
    /// Syscall arguments and number in the pt_regs the raw syscall tracepoints pass.
    pub regs_di: u32,
    pub regs_si: u32,
    pub regs_dx: u32,
    pub regs_r10: u32,
    pub regs_orig_ax: u32,
    /// thread_info.status, whose TS_COMPAT bit marks a 32-bit syscall (other numbers).
    pub task_ti_status: u32,
    /// The trusted-sshd check and the peer of its connection socket (guard's kernel source).
    pub file_f_inode: u32,
    pub file_private_data: u32,
    pub inode_i_mode: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub sb_s_dev: u32,
    pub socket_sk: u32,
    pub sk_family: u32,
    pub sk_daddr: u32,
    pub sk_v6_daddr: u32,
    pub sk_dport: u32,
}

impl Offsets {
    pub const UNKNOWN: Self = Self {
        task_real_parent: OFFSET_UNKNOWN,
        task_tgid: OFFSET_UNKNOWN,
        task_mm: OFFSET_UNKNOWN,
        task_fs: OFFSET_UNKNOWN,
        task_files: OFFSET_UNKNOWN,
        task_nsproxy: OFFSET_UNKNOWN,
        task_cred: OFFSET_UNKNOWN,
        task_loginuid: OFFSET_UNKNOWN,
        task_sessionid: OFFSET_UNKNOWN,
        mm_arg_start: OFFSET_UNKNOWN,
        mm_arg_end: OFFSET_UNKNOWN,
        mm_exe_file: OFFSET_UNKNOWN,
        file_f_path: OFFSET_UNKNOWN,
        path_mnt: OFFSET_UNKNOWN,
        path_dentry: OFFSET_UNKNOWN,
        fs_root: OFFSET_UNKNOWN,
        fs_pwd: OFFSET_UNKNOWN,
        files_fdt: OFFSET_UNKNOWN,
        fdt_max_fds: OFFSET_UNKNOWN,
        fdt_fd: OFFSET_UNKNOWN,
        dentry_d_parent: OFFSET_UNKNOWN,
        dentry_d_name: OFFSET_UNKNOWN,
        qstr_name: OFFSET_UNKNOWN,
        qstr_len: OFFSET_UNKNOWN,
        vfsmount_mnt_root: OFFSET_UNKNOWN,
        mount_mnt: OFFSET_UNKNOWN,
        mount_mnt_parent: OFFSET_UNKNOWN,
        mount_mnt_mountpoint: OFFSET_UNKNOWN,
        nsproxy_mnt_ns: OFFSET_UNKNOWN,
        mnt_ns_inum: OFFSET_UNKNOWN,
        cred_uid: OFFSET_UNKNOWN,
        cred_gid: OFFSET_UNKNOWN,
        cred_suid: OFFSET_UNKNOWN,
        cred_sgid: OFFSET_UNKNOWN,
        cred_euid: OFFSET_UNKNOWN,
        cred_egid: OFFSET_UNKNOWN,
        cred_fsuid: OFFSET_UNKNOWN,
        cred_fsgid: OFFSET_UNKNOWN,
        regs_di: OFFSET_UNKNOWN,
        regs_si: OFFSET_UNKNOWN,
        regs_dx: OFFSET_UNKNOWN,
        regs_r10: OFFSET_UNKNOWN,
        regs_orig_ax: OFFSET_UNKNOWN,
        task_ti_status: OFFSET_UNKNOWN,
        file_f_inode: OFFSET_UNKNOWN,
        file_private_data: OFFSET_UNKNOWN,
        inode_i_mode: OFFSET_UNKNOWN,
        inode_i_ino: OFFSET_UNKNOWN,
        inode_i_sb: OFFSET_UNKNOWN,
        sb_s_dev: OFFSET_UNKNOWN,
        socket_sk: OFFSET_UNKNOWN,
        sk_family: OFFSET_UNKNOWN,
        sk_daddr: OFFSET_UNKNOWN,
        sk_v6_daddr: OFFSET_UNKNOWN,
        sk_dport: OFFSET_UNKNOWN,
    };
}

impl Default for Offsets {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for Offsets {}
