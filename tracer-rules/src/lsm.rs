//! Which LSM labels tasks and objects here: audit's label fields (`subj_type=`, `obj_user=`…)
//! compare those labels, so with no labelling LSM no such condition can hold.

use std::sync::OnceLock;

/// The LSMs that give tasks and files the labels audit's label fields compare.
const LABELLING: [&str; 3] = ["selinux", "apparmor", "smack"];

/// The active LSMs, as `/sys/kernel/security/lsm` lists them (`Err`: it cannot be read).
fn active() -> &'static Result<String, String> {
    static LSM: OnceLock<Result<String, String>> = OnceLock::new();
    LSM.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/security/lsm")
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("/sys/kernel/security/lsm: {e}"))
    })
}

/// `Ok(list)`: no labelling LSM is active (the list of the active ones, for the note);
/// `Err(why)`: one is, or which ones are active cannot be told.
pub(crate) fn unlabelled() -> Result<&'static str, String> {
    let list = active().as_ref().map_err(|e| format!("cannot tell which LSM labels tasks ({e})"))?;
    judge(list)
}

fn judge(list: &str) -> Result<&str, String> {
    match list.split(',').find(|l| LABELLING.contains(l)) {
        Some(l) => Err(format!("{l} is active and tracer does not compare its labels")),
        None => Ok(list),
    }
}

/// The label fields audit has; the `bool` says whether it takes order operators (MLS levels).
pub(crate) fn field(name: &str) -> Option<bool> {
    match name {
        "subj_user" | "subj_role" | "subj_type" | "obj_user" | "obj_role" | "obj_type" => Some(false),
        "subj_sen" | "subj_clr" | "obj_lev_low" | "obj_lev_high" => Some(true),
        _ => None,
    }
}

/// auditctl's file system names (its fstype table, from linux/magic.h; audit 3.0.9 has these
/// two, later ones add cgroup and cgroup2), or a number.
pub(crate) fn fstype(v: &str) -> Option<u32> {
    match v {
        "tracefs" => Some(0x7472_6163),
        "debugfs" => Some(0x6462_6720),
        _ if v.starts_with(|c: char| c.is_ascii_digit()) => {
            crate::value::c_number(v).and_then(|n| u32::try_from(n).ok())
        }
        _ => None,
    }
}

/// The name auditctl prints for a magic number, if it has one.
pub(crate) fn fstype_name(magic: u32) -> Option<&'static str> {
    ["tracefs", "debugfs"].into_iter().find(|n| fstype(n) == Some(magic))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_labelling_lsm_makes_label_fields_unsupported() {
        assert_eq!(super::judge("lockdown,capability,landlock,bpf"), Ok("lockdown,capability,landlock,bpf"));
        for list in ["lockdown,capability,selinux,bpf", "capability,apparmor", "smack"] {
            assert!(super::judge(list).unwrap_err().contains("does not compare its labels"), "{list}");
        }
    }
}
