//! The kernel struct offsets the programs read, resolved from the running kernel's BTF.

use tracer_common::config::{OFFSET_UNKNOWN, Offsets};

use crate::btf::Btf;

/// Fields every event needs; without them the tracer refuses to start rather than report
/// wrong identities. Everything else degrades to "unknown".
const REQUIRED: &[(&str, &str)] = &[
    ("task_struct", "tgid"),
    ("task_struct", "real_parent"),
    ("pt_regs", "orig_ax"),
    ("pt_regs", "di"),
    ("pt_regs", "si"),
    ("pt_regs", "dx"),
    ("pt_regs", "r10"),
];

/// `forget`: fields to treat as absent ("struct.field" names, from `TRACER_FORGET_FIELDS`),
/// so the degraded path of an older or differently built kernel can be tested here.
pub fn resolve(btf: &Btf, forget: &[String]) -> Result<(Offsets, Vec<String>), String> {
    let mut missing = Vec::new();
    let mut get =
        |s: &str, f: &str| match btf.offset_of(s, f).filter(|_| !forget.iter().any(|x| *x == format!("{s}.{f}"))) {
            Some(o) => o,
            None => {
                missing.push(format!("{s}.{f}"));
                OFFSET_UNKNOWN
            }
        };
    let o = Offsets {
        task_real_parent: get("task_struct", "real_parent"),
        task_tgid: get("task_struct", "tgid"),
        task_mm: get("task_struct", "mm"),
        task_fs: get("task_struct", "fs"),
        task_files: get("task_struct", "files"),
        task_nsproxy: get("task_struct", "nsproxy"),
        task_cred: get("task_struct", "cred"),
        task_loginuid: get("task_struct", "loginuid"),
        task_sessionid: get("task_struct", "sessionid"),
        mm_arg_start: get("mm_struct", "arg_start"),
        mm_arg_end: get("mm_struct", "arg_end"),
        mm_exe_file: get("mm_struct", "exe_file"),
        file_f_path: get("file", "f_path"),
        path_mnt: get("path", "mnt"),
        path_dentry: get("path", "dentry"),
        fs_root: get("fs_struct", "root"),
        fs_pwd: get("fs_struct", "pwd"),
        files_fdt: get("files_struct", "fdt"),
        fdt_max_fds: get("fdtable", "max_fds"),
        fdt_fd: get("fdtable", "fd"),
        dentry_d_parent: get("dentry", "d_parent"),
        dentry_d_name: get("dentry", "d_name"),
        qstr_name: get("qstr", "name"),
        qstr_len: get("qstr", "len"),
        vfsmount_mnt_root: get("vfsmount", "mnt_root"),
        mount_mnt: get("mount", "mnt"),
        mount_mnt_parent: get("mount", "mnt_parent"),
        mount_mnt_mountpoint: get("mount", "mnt_mountpoint"),
        nsproxy_mnt_ns: get("nsproxy", "mnt_ns"),
        mnt_ns_inum: get("mnt_namespace", "ns.inum"),
        cred_uid: get("cred", "uid"),
        cred_gid: get("cred", "gid"),
        cred_suid: get("cred", "suid"),
        cred_sgid: get("cred", "sgid"),
        cred_euid: get("cred", "euid"),
        cred_egid: get("cred", "egid"),
        cred_fsuid: get("cred", "fsuid"),
        cred_fsgid: get("cred", "fsgid"),
        regs_di: get("pt_regs", "di"),
        regs_si: get("pt_regs", "si"),
        regs_dx: get("pt_regs", "dx"),
        regs_r10: get("pt_regs", "r10"),
        regs_orig_ax: get("pt_regs", "orig_ax"),
        task_ti_status: get("task_struct", "thread_info.status"),
        file_f_inode: get("file", "f_inode"),
        file_private_data: get("file", "private_data"),
        inode_i_mode: get("inode", "i_mode"),
        inode_i_ino: get("inode", "i_ino"),
        inode_i_sb: get("inode", "i_sb"),
        sb_s_dev: get("super_block", "s_dev"),
        socket_sk: get("socket", "sk"),
        sk_family: get("sock", "__sk_common.skc_family"),
        sk_daddr: get("sock", "__sk_common.skc_daddr"),
        sk_v6_daddr: get("sock", "__sk_common.skc_v6_daddr"),
        sk_dport: get("sock", "__sk_common.skc_dport"),
    };
    for (s, f) in REQUIRED {
        if o_missing(&missing, s, f) {
            return Err(format!("kernel BTF lacks {s}.{f}"));
        }
    }
    Ok((o, missing))
}

fn o_missing(missing: &[String], s: &str, f: &str) -> bool {
    missing.iter().any(|m| *m == format!("{s}.{f}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_resolves_every_field() {
        let btf = Btf::from_sys_fs().unwrap();
        let (o, missing) = resolve(&btf, &[]).unwrap();
        assert!(missing.is_empty(), "missing on this kernel: {missing:?}");
        assert_eq!(o.path_dentry, 8);
        assert_ne!(o.mnt_ns_inum, OFFSET_UNKNOWN);
    }

    #[test]
    fn forgotten_fields_degrade_and_required_ones_refuse() {
        let btf = Btf::from_sys_fs().unwrap();
        let (o, missing) = resolve(&btf, &["task_struct.loginuid".into()]).unwrap();
        assert_eq!(o.task_loginuid, OFFSET_UNKNOWN);
        assert_eq!(missing, vec!["task_struct.loginuid".to_string()]);
        assert!(resolve(&btf, &["task_struct.tgid".into()]).is_err());
    }
}
