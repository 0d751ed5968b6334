//! The Go toolchain version from the `.go.buildinfo` blob, following the
//! layout that `debug/buildinfo` reads.

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 1;
/// Go 1.18+: strings are inline after the header instead of behind pointers.
const FLAG_INLINE_STRINGS: u8 = 2;
/// The linker aligns the blob this way, which keeps the fallback scan cheap.
const ALIGN: usize = 16;

/// Finds the blob by its magic when section headers are missing or lie; the
/// returned slice runs to the end of the file.
pub fn scan(data: &[u8]) -> Option<&[u8]> {
    let mut off = 0usize;
    while let Some(window) = data.get(off..) {
        if window.starts_with(MAGIC) {
            return Some(window);
        }
        off = off.checked_add(ALIGN)?;
    }
    None
}

fn read_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let shift = 7 * i as u32;
        value |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn read_ptr(buf: &[u8], size: usize, big_endian: bool) -> Option<u64> {
    let raw = buf.get(..size)?;
    let mut bytes = [0u8; 8];
    if big_endian {
        bytes[8 - size..].copy_from_slice(raw);
        Some(u64::from_be_bytes(bytes))
    } else {
        bytes[..size].copy_from_slice(raw);
        Some(u64::from_le_bytes(bytes))
    }
}

/// Parses the raw version string. `read_mem(vaddr, len)` resolves the pointers
/// that pre-1.18 binaries store instead of inline strings.
pub fn parse_version<'m>(
    blob: &[u8],
    read_mem: impl Fn(u64, u64) -> Option<&'m [u8]>,
) -> Result<String> {
    let bad = |what: &str| Error::Malformed(format!(".go.buildinfo: {what}"));
    if !blob.starts_with(MAGIC) {
        return Err(bad("bad magic"));
    }
    let header = blob.get(..HEADER_LEN).ok_or_else(|| bad("header cut short"))?;
    let ptr_size = usize::from(header[14]);
    let flags = header[15];
    let raw = if flags & FLAG_INLINE_STRINGS != 0 {
        let rest = &blob[HEADER_LEN..];
        let (len, used) = read_uvarint(rest).ok_or_else(|| bad("bad version length"))?;
        let len = usize::try_from(len).map_err(|_| bad("version length too large"))?;
        rest.get(used..used.checked_add(len).ok_or_else(|| bad("version length too large"))?)
            .ok_or_else(|| bad("version string cut short"))?
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(bad(&format!("pointer size {ptr_size}")));
        }
        let big = flags & FLAG_BIG_ENDIAN != 0;
        let str_ptr = read_ptr(&blob[16..], ptr_size, big).ok_or_else(|| bad("header cut short"))?;
        let size = ptr_size as u64;
        let string_header = read_mem(str_ptr, 2 * size).ok_or_else(|| bad("version pointer outside the file"))?;
        let data = read_ptr(string_header, ptr_size, big).ok_or_else(|| bad("version header"))?;
        let len = string_header
            .get(ptr_size..)
            .and_then(|rest| read_ptr(rest, ptr_size, big))
            .ok_or_else(|| bad("version header"))?;
        read_mem(data, len).ok_or_else(|| bad("version bytes outside the file"))?
    };
    String::from_utf8(raw.to_vec()).map_err(|_| bad("version is not UTF-8"))
}

/// Reduces e.g. "go1.26.8 X:nodwarf5" or "devel go1.27-abc123 Mon ..." to the
/// release token; anything without such a token is reported as found.
pub fn release_token(raw: &str) -> String {
    for word in raw.split_whitespace() {
        if word.starts_with("go1") {
            let end = word.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(word.len());
            return word[..end].to_owned();
        }
    }
    raw.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ptr_size: u8, flags: u8) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(ptr_size);
        b.push(flags);
        b.resize(HEADER_LEN, 0);
        b
    }

    fn no_mem(_: u64, _: u64) -> Option<&'static [u8]> {
        None
    }

    #[test]
    fn inline_version() {
        let mut b = header(8, FLAG_INLINE_STRINGS);
        b.push(8);
        b.extend_from_slice(b"go1.26.8");
        b.extend_from_slice(&[0x20, 0, 0]);
        assert_eq!(parse_version(&b, no_mem).unwrap(), "go1.26.8");
    }

    #[test]
    fn inline_version_cut_short() {
        let mut b = header(8, FLAG_INLINE_STRINGS);
        b.push(20);
        b.extend_from_slice(b"go1.2");
        assert!(matches!(parse_version(&b, no_mem), Err(Error::Malformed(_))));
        let mut b = header(8, FLAG_INLINE_STRINGS);
        b.extend_from_slice(&[0xff; 11]);
        assert!(matches!(parse_version(&b, no_mem), Err(Error::Malformed(_))));
        assert!(matches!(parse_version(&b[..20], no_mem), Err(Error::Malformed(_))));
        assert!(matches!(parse_version(b"nope", no_mem), Err(Error::Malformed(_))));
    }

    #[test]
    fn pointer_version_little_and_big_endian() {
        // Simulated memory: string header at 0x1000, bytes at 0x2000.
        let version = b"go1.16.15";
        for big in [false, true] {
            let mut b = header(8, if big { FLAG_BIG_ENDIAN } else { 0 });
            let put = |v: u64| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            b[16..24].copy_from_slice(&put(0x1000));
            let mut string_header = put(0x2000).to_vec();
            string_header.extend_from_slice(&put(version.len() as u64));
            let mem = move |addr: u64, len: u64| -> Option<&[u8]> {
                match (addr, len) {
                    (0x1000, 16) => Some(Box::leak(string_header.clone().into_boxed_slice())),
                    (0x2000, 9) => Some(&version[..]),
                    _ => None,
                }
            };
            assert_eq!(parse_version(&b, mem).unwrap(), "go1.16.15");
        }
    }

    #[test]
    fn pointer_version_dangling() {
        let mut b = header(4, 0);
        b[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
        assert!(matches!(parse_version(&b, no_mem), Err(Error::Malformed(_))));
        let b = header(3, 0);
        assert!(matches!(parse_version(&b, no_mem), Err(Error::Malformed(_))));
    }

    #[test]
    fn scan_finds_aligned_magic_only() {
        let mut data = vec![0u8; 64];
        data[8..22].copy_from_slice(MAGIC);
        assert!(scan(&data).is_none());
        data[32..46].copy_from_slice(MAGIC);
        assert_eq!(scan(&data).map(|s| s.len()), Some(32));
        assert!(scan(&[]).is_none());
    }

    #[test]
    fn release_tokens() {
        assert_eq!(release_token("go1.26.8"), "go1.26.8");
        assert_eq!(release_token("go1.26.8 X:nodwarf5"), "go1.26.8");
        assert_eq!(release_token("go1.27rc1"), "go1.27rc1");
        assert_eq!(release_token("devel go1.27-abc123 Mon Jan 1"), "go1.27");
        assert_eq!(release_token(" weird "), "weird");
    }

    #[test]
    fn uvarint() {
        assert_eq!(read_uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(read_uvarint(&[0x80]), None);
    }
}
