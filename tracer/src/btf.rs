//! Just enough of a BTF reader to find struct member offsets in the running kernel's
//! `/sys/kernel/btf/vmlinux`. rustc cannot emit CO-RE relocations, so the loader resolves
//! the offsets the programs need here and passes them as globals.

use std::collections::HashMap;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("not BTF data (bad magic or truncated header)")]
    BadHeader,
    #[error("BTF type section is truncated or has an unknown kind {0}")]
    BadType(u32),
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
}

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    /// Referenced type for typedef/const/volatile/...
    ty: u32,
    members: Vec<Member>,
}

pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs: HashMap<String, u32>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

impl Btf {
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file("/sys/kernel/btf/vmlinux")
    }

    pub fn from_file(path: &str) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read { path: path.into(), source })?;
        Self::parse(&data)
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::BadHeader);
        }
        let hdr_len = u32_at(data, 4).ok_or(BtfError::BadHeader)? as usize;
        let type_off = u32_at(data, 8).ok_or(BtfError::BadHeader)? as usize;
        let type_len = u32_at(data, 12).ok_or(BtfError::BadHeader)? as usize;
        let str_off = u32_at(data, 16).ok_or(BtfError::BadHeader)? as usize;
        let str_len = u32_at(data, 20).ok_or(BtfError::BadHeader)? as usize;
        let tsec = data.get(hdr_len + type_off..hdr_len + type_off + type_len).ok_or(BtfError::BadHeader)?;
        let strings = data.get(hdr_len + str_off..hdr_len + str_off + str_len).ok_or(BtfError::BadHeader)?.to_vec();
        // Type id 0 is void.
        let mut types = vec![Type { name: 0, kind: 0, ty: 0, members: vec![] }];
        let mut p = 0;
        while p + 12 <= tsec.len() {
            let name = u32_at(tsec, p).unwrap();
            let info = u32_at(tsec, p + 4).unwrap();
            let size_or_type = u32_at(tsec, p + 8).unwrap();
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let extra = match kind {
                1 => 4,                  // INT
                2 | 7..=12 | 16 | 18 => 0, // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
                3 => 12,                 // ARRAY
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = p + i * 12;
                        let off = u32_at(tsec, m + 8).ok_or(BtfError::BadType(kind))?;
                        members.push(Member {
                            name: u32_at(tsec, m).ok_or(BtfError::BadType(kind))?,
                            ty: u32_at(tsec, m + 4).ok_or(BtfError::BadType(kind))?,
                            bit_offset: if kind_flag { off & 0xff_ffff } else { off },
                        });
                    }
                    vlen * 12
                }
                6 => vlen * 8,      // ENUM
                13 => vlen * 8,     // FUNC_PROTO
                14 => 4,            // VAR
                15 => vlen * 12,    // DATASEC
                17 => 4,            // DECL_TAG
                19 => vlen * 12,    // ENUM64
                other => return Err(BtfError::BadType(other)),
            };
            p += extra;
            types.push(Type { name, kind, ty: size_or_type, members });
        }
        let mut btf = Btf { types, strings, structs: HashMap::new() };
        for (id, t) in btf.types.iter().enumerate() {
            if t.kind == KIND_STRUCT && !t.members.is_empty() {
                let name = btf.name(t.name).to_owned();
                btf.structs.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the underlying type.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t) if matches!(t.kind, KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) => id = t.ty,
                _ => break,
            }
        }
        id
    }

    /// Finds `name` among the members of struct/union `id`, looking inside anonymous
    /// members; returns (bit offset, member type).
    fn member(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
        let t = self.types.get(self.resolve(id) as usize)?;
        if depth > 8 || !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for m in &t.members {
            if self.name(m.name) == name {
                return Some((m.bit_offset, m.ty));
            }
        }
        for m in &t.members {
            if m.name == 0 {
                if let Some((off, ty)) = self.member(m.ty, name, depth + 1) {
                    return Some((m.bit_offset + off, ty));
                }
            }
        }
        None
    }

    /// Byte offset of a dotted member path in struct `strukt`, e.g. ("mnt_namespace",
    /// "ns.inum"). None when the kernel lacks it.
    pub fn offset_of(&self, strukt: &str, path: &str) -> Option<u32> {
        let mut id = *self.structs.get(strukt)?;
        let mut bits = 0;
        for part in path.split('.') {
            let (off, ty) = self.member(id, part, 0)?;
            bits += off;
            id = ty;
        }
        (bits % 8 == 0).then_some(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_has_task_struct_fields() {
        let btf = Btf::from_sys_fs().expect("this machine has /sys/kernel/btf/vmlinux");
        assert!(btf.offset_of("task_struct", "tgid").is_some());
        assert!(btf.offset_of("mm_struct", "arg_start").is_some(), "anonymous member walk");
        assert_eq!(btf.offset_of("path", "mnt"), Some(0));
        assert_eq!(btf.offset_of("path", "dentry"), Some(8));
        assert!(btf.offset_of("task_struct", "no_such_field").is_none());
        assert!(btf.offset_of("no_such_struct", "x").is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(Btf::parse(b"not btf at all, clearly not"), Err(BtfError::BadHeader)));
    }
}
