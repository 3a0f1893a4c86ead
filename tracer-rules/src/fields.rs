//! `-F name<op>value` and `-C a<op>b` as libaudit parses them, with the kernel's checks
//! (which operators a field takes, which values).

use tracer_common::rules::{PERM_ATTR, PERM_EXEC, PERM_READ, PERM_WRITE};

use crate::{
    Arch,
    model::{
        Cond, IdKind,
        LineError::{self, Bad, Unsupported},
        Op, Var,
    },
    value,
};

pub(crate) enum Parsed {
    Arch(Op, Arch),
    Cond(Cond),
}

/// Split at the operator the way libaudit looks for it: the first of `!= >= <= &= = > < &`
/// found anywhere in the text, in that order.
pub(crate) fn split_op(pair: &str) -> Option<(&str, Op, &str)> {
    const OPS: [(&str, Op); 8] = [
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("&=", Op::BitTest),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("&", Op::BitMask),
    ];
    OPS.iter().find_map(|(s, op)| pair.find(s).map(|i| (&pair[..i], *op, &pair[i + s.len()..])))
}

fn var(name: &str) -> Option<Var> {
    Some(match name {
        "auid" | "loginuid" => Var::Auid,
        "uid" => Var::Uid,
        "euid" => Var::Euid,
        "suid" => Var::Suid,
        "fsuid" => Var::Fsuid,
        "gid" => Var::Gid,
        "egid" => Var::Egid,
        "sgid" => Var::Sgid,
        "fsgid" => Var::Fsgid,
        "pid" => Var::Pid,
        "ppid" => Var::Ppid,
        "sessionid" => Var::SessionId,
        "loginuid_set" => Var::LoginuidSet,
        "exit" => Var::Exit,
        "success" => Var::Success,
        "a0" => Var::A0,
        "a1" => Var::A1,
        "a2" => Var::A2,
        "a3" => Var::A3,
        "obj_uid" => Var::ObjUid,
        "obj_gid" => Var::ObjGid,
        _ => return None,
    })
}

/// Fields audit knows that tracer does not evaluate, and why.
fn unsupported(name: &str) -> Option<&'static str> {
    Some(match name {
        "inode" | "devmajor" | "devminor" => "object inode and device numbers: use path= or dir=",
        "filetype" => "the object's file type is not recorded by tracer",
        "pers" => "the personality is not recorded by tracer",
        "msgtype" => "msgtype filters the user and exclude lists, which tracer does not have",
        "saddr_fam" => "the socket address family filter is not supported",
        "field_compare" => "write comparisons with -C",
        _ => return None,
    })
}

pub(crate) fn perm_bits(s: &str) -> Result<u32, String> {
    if s.is_empty() || s.len() > 4 {
        return Err(format!("permission {s:?}: 1 to 4 of r, w, x, a"));
    }
    s.chars().try_fold(0, |acc, c| {
        Ok(acc
            | match c.to_ascii_lowercase() {
                'r' => PERM_READ,
                'w' => PERM_WRITE,
                'x' => PERM_EXEC,
                'a' => PERM_ATTR,
                _ => return Err(format!("permission {c:?} is not one of r, w, x, a")),
            })
    })
}

pub(crate) fn field(pair: &str) -> Result<Parsed, LineError> {
    let (name, op, v) = split_op(pair).ok_or_else(|| Bad(format!("{pair:?}: no operator (= != < > <= >= & &=)")))?;
    if name.is_empty() {
        return Err(Bad(format!("{pair:?}: field name missing")));
    }
    if v.is_empty() {
        return Err(Bad(format!("{name}: value missing")));
    }
    let eq_ne = |what: &str| {
        if matches!(op, Op::Eq | Op::Ne) { Ok(()) } else { Err(Bad(format!("{what} takes only = or !="))) }
    };
    let only_eq = |what: &str| if op == Op::Eq { Ok(()) } else { Err(Bad(format!("{what} takes only ="))) };
    let string = |what: &str| {
        if v.len() > 4096 { Err(Bad(format!("{what}: value longer than PATH_MAX"))) } else { Ok(v.to_string()) }
    };
    match name {
        "arch" => {
            eq_ne("arch")?;
            let a = match v {
                "b64" | "x86_64" => Arch::B64,
                "b32" | "i386" | "i486" | "i586" | "i686" => Arch::B32,
                _ => match value::c_number(v) {
                    Some(0xc000_003e) => Arch::B64,
                    Some(0x4000_0003) => Arch::B32,
                    _ => {
                        return Err(Unsupported(format!(
                            "arch={v}: tracer runs on x86_64 (b64, and b32 for i386 calls)"
                        )));
                    }
                },
            };
            return Ok(Parsed::Arch(op, a));
        }
        "path" | "dir" => {
            only_eq(name)?;
            let p = string(name)?;
            if !p.starts_with('/') {
                return Err(Bad(format!("{name}={p}: must be an absolute path")));
            }
            if name == "path" {
                if p.len() > 1 && p.ends_with('/') {
                    return Err(Bad(format!("path={p}: a file may not end with '/' (use dir=)")));
                }
                return Ok(Parsed::Cond(Cond::Path(p)));
            }
            return Ok(Parsed::Cond(Cond::Dir(p)));
        }
        "perm" => {
            only_eq("perm")?;
            return perm_bits(v).map(|p| Parsed::Cond(Cond::Perm(p))).map_err(Bad);
        }
        "exe" => {
            eq_ne("exe")?;
            let p = string("exe")?;
            if !p.starts_with('/') {
                return Err(Bad(format!("exe={p}: must be an absolute path")));
            }
            return Ok(Parsed::Cond(Cond::Exe { op, path: p }));
        }
        "fstype" => {
            let magic = crate::lsm::fstype(v)
                .ok_or_else(|| Bad(format!("fstype={v}: unknown file system type (tracefs, debugfs or a number)")))?;
            return Ok(Parsed::Cond(Cond::FsType { op, magic }));
        }
        _ => {}
    }
    if let Some(levels) = crate::lsm::field(name) {
        if !levels && !matches!(op, Op::Eq | Op::Ne) {
            return Err(Bad(format!("{name} takes only = or !=")));
        }
        crate::lsm::unlabelled().map_err(|why| Unsupported(format!("field {name}: LSM labels: {why}")))?;
        return Ok(Parsed::Cond(Cond::Lsm { field: name.into(), op, value: string(name)? }));
    }
    let Some(var) = var(name) else {
        return Err(match unsupported(name) {
            Some(why) => Unsupported(format!("field {name}: {why}")),
            None => Bad(format!("unknown field {name:?}")),
        });
    };
    if matches!(op, Op::BitMask | Op::BitTest) && !matches!(var, Var::A0 | Var::A1 | Var::A2 | Var::A3) {
        return Err(Bad(format!("{name}: the bit operators & and &= are only for a0..a3 (the kernel refuses them)")));
    }
    let value = match var {
        Var::Auid | Var::Uid | Var::Euid | Var::Suid | Var::Fsuid | Var::ObjUid => value::uid(v),
        Var::Gid | Var::Egid | Var::Sgid | Var::Fsgid | Var::ObjGid => value::gid(v),
        Var::Exit => value::exit(v),
        Var::A0 | Var::A1 | Var::A2 | Var::A3 => value::signed(v, false),
        Var::SessionId => value::signed(v, true),
        Var::Pid | Var::Ppid | Var::Success | Var::LoginuidSet => value::unsigned(v),
    }
    .map_err(|e| Bad(format!("{name}: {e}")))?;
    // The kernel takes no invalid id (-1) in a rule, except auid's `unset`.
    if value == u32::MAX && var.id_kind().is_some() && var != Var::Auid {
        return Err(Bad(format!("{name}={v}: not a valid id (the kernel refuses -1 except for auid)")));
    }
    if matches!(var, Var::Success | Var::LoginuidSet) && value > 1 {
        return Err(Bad(format!("{name} is 0 or 1")));
    }
    if var == Var::LoginuidSet {
        eq_ne(name)?;
    }
    Ok(Parsed::Cond(Cond::Cmp { var, op, value }))
}

/// Rank in the kernel's AUDIT_COMPARE_* naming: the lower-ranked field is on the left.
fn rank(v: Var) -> u8 {
    match v {
        Var::Uid | Var::Gid => 0,
        Var::Auid | Var::Egid => 1,
        Var::Euid | Var::Sgid => 2,
        Var::Suid | Var::Fsgid => 3,
        Var::Fsuid => 4,
        _ => 9, // obj_uid, obj_gid: always on the right
    }
}

/// `-C left op right`: two uid-type or two gid-type fields, = or != only.
pub(crate) fn compare(pair: &str) -> Result<Cond, LineError> {
    let (op, (l, r)) = if let Some(p) = pair.split_once("!=") {
        (Op::Ne, p)
    } else if let Some(p) = pair.split_once('=') {
        (Op::Eq, p)
    } else {
        return Err(Bad(format!("-C {pair}: takes only = or !=")));
    };
    let field = |n: &str| var(n).filter(|v| v.id_kind().is_some());
    let (Some(a), Some(b)) = (field(l), field(r)) else {
        return Err(Bad(format!(
            "-C {pair}: compares uid fields (auid uid euid suid fsuid obj_uid) or gid fields (gid egid sgid fsgid obj_gid)"
        )));
    };
    if a == b || a.id_kind() != b.id_kind() {
        return Err(Bad(format!("-C {pair}: not a comparison audit has")));
    }
    let (left, right) = if rank(a) <= rank(b) { (a, b) } else { (b, a) };
    debug_assert!(matches!(left.id_kind(), Some(IdKind::Uid | IdKind::Gid)));
    Ok(Cond::Compare { left, op, right })
}
