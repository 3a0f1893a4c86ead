//! One lossless encoding for kernel byte strings (paths, argv, comm) that need not be UTF-8.
//!
//! JSON: valid UTF-8 is written as is; every byte that is not part of valid UTF-8 is written
//! as the lone surrogate escape `\udcXX` (XX = the byte), Python's "surrogateescape"
//! (PEP 383): `os.fsencode(json.loads(line)["path"])` gives the exact bytes back, and so
//! does `decode_json_bytes` here. Text: C-style escapes (`\n`, `\"`, `\\`, `\xHH`).

use std::fmt::Write as _;

/// Appends `b` as a JSON string literal (quotes included).
pub(crate) fn json_str(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    // Most paths are plain printable ASCII: one copy, no per-char work (hot path of
    // `trace --format json`).
    if b.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\') {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(Buf(out), "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for &byte in chunk.invalid() {
            let _ = write!(Buf(out), "\\udc{byte:02x}");
        }
    }
    out.push(b'"');
}

/// Reverses the surrogate escapes after serde_json decoded a string as bytes: serde_json
/// turns a lone `\udcXX` into its WTF-8 form ED B2|B3 xx.
pub(crate) fn decode_json_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0xED && i + 2 < b.len() && (b[i + 1] == 0xB2 || b[i + 1] == 0xB3) {
            let cp = 0xD000 | ((u32::from(b[i + 1]) & 0x3F) << 6) | (u32::from(b[i + 2]) & 0x3F);
            if (0xDC80..=0xDCFF).contains(&cp) {
                out.push((cp - 0xDC00) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Text form: printable UTF-8 as is, everything else escaped; never breaks a line.
pub(crate) fn text_escape(out: &mut String, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut tmp = [0u8; 4];
                    for byte in c.encode_utf8(&mut tmp).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for &byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
}

struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// serde adapter: a JSON string decoded to the exact original bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct JsonBytes(pub Vec<u8>);

impl<'de> serde::Deserialize<'de> for JsonBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = JsonBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<JsonBytes, E> {
                Ok(JsonBytes(decode_json_bytes(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonBytes, E> {
                Ok(JsonBytes(decode_json_bytes(v.as_bytes())))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(b: &[u8]) {
        let mut out = Vec::new();
        json_str(&mut out, b);
        let text = String::from_utf8(out.clone()).expect("JSON output is always UTF-8");
        let back: JsonBytes = serde_json::from_str(&text).unwrap();
        assert_eq!(back.0, b, "via {text}");
    }

    #[test]
    fn json_roundtrips_hostile_names() {
        roundtrip(b"plain");
        roundtrip(b"with space");
        roundtrip(b"new\nline");
        roundtrip(b"quo\"te and back\\slash");
        roundtrip(b"bad\xff\xfe utf8 \xc3");
        roundtrip("ünïcödé ✓".as_bytes());
        roundtrip(b"\x01\x7f ctrl");
        roundtrip(b"\xed\xb2\x80 looks like wtf-8");
    }

    #[test]
    fn invalid_bytes_use_surrogate_escapes() {
        let mut out = Vec::new();
        json_str(&mut out, b"a\xffb");
        assert_eq!(out, b"\"a\\udcffb\"");
    }

    #[test]
    fn text_never_breaks_lines() {
        let mut s = String::new();
        text_escape(&mut s, b"a\nb\xff\"c");
        assert_eq!(s, "a\\nb\\xff\\\"c");
    }
}
