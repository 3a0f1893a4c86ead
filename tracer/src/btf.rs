//! Just enough of a BTF reader to find struct member offsets in the running kernel's
//! `/sys/kernel/btf/vmlinux`. rustc cannot emit CO-RE relocations, so the loader resolves
//! the offsets the programs need here and passes them as globals.

use std::collections::HashMap;

use thiserror::Error;

#[derive(Debug, Error)]
pub(crate) enum BtfError {
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
const KIND_FUNC: u32 = 12;
const KIND_TYPE_TAG: u32 = 18;

/// Type ids index a table of offsets into the type section; members are decoded only for
/// the handful of structs looked up, so parsing the ~100k types of vmlinux stays cheap
/// (this is on the path from start to attached).
pub(crate) struct Btf {
    /// The whole file; `types` and `strings` are ranges of it (no copies: this runs on the
    /// way to attached, and the peak RSS is measured).
    data: Vec<u8>,
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
    /// Offset of each type's header in `types`; index = type id (0 = void).
    offsets: Vec<u32>,
    structs: HashMap<Vec<u8>, u32>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

struct Header {
    name: u32,
    kind: u32,
    kind_flag: bool,
    vlen: usize,
    size_or_type: u32,
}

impl Btf {
    pub(crate) fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file("/sys/kernel/btf/vmlinux")
    }

    pub(crate) fn from_file(path: &str) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read { path: path.into(), source })?;
        Self::parse(data)
    }

    pub(crate) fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::BadHeader);
        }
        let field = |o| u32_at(&data, o).map(|v| v as usize).ok_or(BtfError::BadHeader);
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(4)?, field(8)?, field(12)?, field(16)?, field(20)?);
        let types = hdr_len + type_off..hdr_len + type_off + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if types.end > data.len() || strings.end > data.len() {
            return Err(BtfError::BadHeader);
        }
        let mut btf = Btf { data, types, strings, offsets: vec![0], structs: HashMap::new() };
        let type_len = btf.types.len();
        let mut p = 0;
        while p + 12 <= type_len {
            let h = btf.header_at(p).ok_or(BtfError::BadType(0))?;
            let extra = match h.kind {
                1 => 4,                    // INT
                2 | 7..=12 | 16 | 18 => 0, // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
                3 => 12,                   // ARRAY
                KIND_STRUCT | KIND_UNION => h.vlen * 12,
                6 | 13 => h.vlen * 8,   // ENUM FUNC_PROTO
                14 | 17 => 4,           // VAR DECL_TAG
                15 | 19 => h.vlen * 12, // DATASEC ENUM64
                other => return Err(BtfError::BadType(other)),
            };
            if h.kind == KIND_STRUCT && h.vlen > 0 {
                let id = btf.offsets.len() as u32;
                let name = btf.name(h.name).as_bytes().to_vec();
                btf.structs.entry(name).or_insert(id);
            }
            btf.offsets.push(p as u32);
            p += 12 + extra;
        }
        if p != type_len {
            return Err(BtfError::BadType(0));
        }
        Ok(btf)
    }

    fn type_bytes(&self) -> &[u8] {
        &self.data[self.types.clone()]
    }

    fn header_at(&self, p: usize) -> Option<Header> {
        let info = u32_at(self.type_bytes(), p + 4)?;
        Some(Header {
            name: u32_at(self.type_bytes(), p)?,
            kind: (info >> 24) & 0x1f,
            kind_flag: info >> 31 == 1,
            vlen: (info & 0xffff) as usize,
            size_or_type: u32_at(self.type_bytes(), p + 8)?,
        })
    }

    fn header(&self, id: u32) -> Option<(usize, Header)> {
        let p = *self.offsets.get(id as usize)? as usize;
        if id == 0 {
            return None;
        }
        Some((p, self.header_at(p)?))
    }

    fn name(&self, off: u32) -> &str {
        let s = self.data[self.strings.clone()].get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the underlying type.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.header(id) {
                Some((_, h))
                    if matches!(h.kind, KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) =>
                {
                    id = h.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// (name offset, type, bit offset) of each member of struct/union `id`.
    fn members(&self, id: u32) -> Vec<(u32, u32, u32)> {
        let Some((p, h)) = self.header(self.resolve(id)) else { return Vec::new() };
        if !matches!(h.kind, KIND_STRUCT | KIND_UNION) {
            return Vec::new();
        }
        (0..h.vlen)
            .filter_map(|i| {
                let m = p + 12 + i * 12;
                let off = u32_at(self.type_bytes(), m + 8)?;
                Some((
                    u32_at(self.type_bytes(), m)?,
                    u32_at(self.type_bytes(), m + 4)?,
                    if h.kind_flag { off & 0xff_ffff } else { off },
                ))
            })
            .collect()
    }

    /// Finds `name` among the members of struct/union `id`, looking inside anonymous
    /// members; returns (bit offset, member type).
    fn member(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
        if depth > 8 {
            return None;
        }
        let members = self.members(id);
        if let Some(&(_, ty, off)) = members.iter().find(|(n, _, _)| self.name(*n) == name) {
            return Some((off, ty));
        }
        members
            .iter()
            .filter(|(n, _, _)| *n == 0)
            .find_map(|&(_, ty, off)| self.member(ty, name, depth + 1).map(|(o, t)| (off + o, t)))
    }

    /// Type id of the kernel function `name` (BTF_KIND_FUNC), for attaching trampolines.
    pub(crate) fn func_id(&self, name: &str) -> Option<u32> {
        (1..self.offsets.len() as u32)
            .find(|&id| self.header(id).is_some_and(|(_, h)| h.kind == KIND_FUNC && self.name(h.name) == name))
    }

    /// Byte offset of a dotted member path in struct `strukt`, e.g. ("mnt_namespace",
    /// "ns.inum"). None when the kernel lacks it.
    pub(crate) fn offset_of(&self, strukt: &str, path: &str) -> Option<u32> {
        let mut id = *self.structs.get(strukt.as_bytes())?;
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
        assert!(matches!(Btf::parse(b"not btf at all, clearly not".to_vec()), Err(BtfError::BadHeader)));
    }
}
