//! The kernel struct offsets the programs read, resolved from the running kernel's BTF. The
//! fields themselves are declared once, in tracer-common/src/offsets.rs.

use tracer_common::offsets::{KernelField, OFFSET_UNKNOWN, Offsets};

use crate::btf::Btf;

/// `forget`: fields to treat as absent ("struct.field" names, from `TRACER_FORGET_FIELDS`),
/// so the degraded path of an older or differently built kernel can be tested here.
/// Returns the offsets and the fields this kernel lacks; an error when a required one is
/// missing.
pub(crate) fn resolve(btf: &Btf, forget: &[String]) -> Result<(Offsets, Vec<String>), String> {
    let mut missing = Vec::new();
    let mut first_required = None;
    let o = Offsets::resolve_each(|f: &KernelField| {
        let name = format!("{}.{}", f.strukt, f.member);
        match btf.offset_of(f.strukt, f.member).filter(|_| !forget.contains(&name)) {
            Some(o) => o,
            None => {
                if f.required && first_required.is_none() {
                    first_required = Some(name.clone());
                }
                missing.push(name);
                OFFSET_UNKNOWN
            }
        }
    });
    match first_required {
        Some(name) => Err(format!("kernel BTF lacks {name}")),
        None => Ok((o, missing)),
    }
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
