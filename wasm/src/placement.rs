//! The decoded code the probe-placement policy (src/target/placement.ts) reads:
//! a named function's instructions, and every direct call to a function.

use crate::error::{Error, Result};
use crate::json;
use crate::target::Target;
use crate::x86::{self, Insn, Listing};
use std::fmt::Write;

/// Functions larger than this are refused: probed runtime functions are a few
/// hundred bytes, and the JSON listing grows with the size.
const MAX_DISASM: u64 = 1 << 20;

fn listing(t: &Target, name: &str, addr: u64, size: u64) -> Result<Listing> {
    if size == 0 {
        return Err(Error::Malformed(format!("{name} has no size")));
    }
    let code = t
        .bytes_at(addr, size)
        .ok_or_else(|| Error::Malformed(format!("{name} at {addr:#x}+{size:#x} is not in a loaded segment")))?;
    Ok(x86::decode(code, addr))
}

fn insn_json(out: &mut String, i: &Insn) {
    let _ = write!(out, "{{\"addr\":{},\"len\":{},\"kind\":\"{}\",\"target\":", i.addr, i.len, i.kind.as_str());
    match i.target {
        Some(t) => {
            let _ = write!(out, "{t}");
        }
        None => out.push_str("null"),
    }
    let _ = write!(out, ",\"emulated\":{},\"text\":", i.emulated);
    json::string(out, &i.text);
    out.push('}');
}

/// `{name, addr, size, offset, complete, insns: [{addr, len, kind, target, emulated, text}]}`
/// for the function `name`; `offset` is the file offset of its entry.
pub fn disasm_json(t: &Target, name: &str) -> Result<String> {
    let f = t.function(name)?;
    let (addr, size, offset) = (f.sym.addr, f.sym.size, f.offset);
    if size > MAX_DISASM {
        return Err(Error::Usage(format!("{name} is {size} bytes, too large to list")));
    }
    let l = listing(t, name, addr, size)?;
    let mut out = String::from("{");
    json::key(&mut out, true, "name");
    json::string(&mut out, name);
    let _ = write!(out, ",\"addr\":{addr},\"size\":{size},\"offset\":{offset},\"complete\":{},\"insns\":[", l.complete);
    for (n, i) in l.insns.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        insn_json(&mut out, i);
    }
    out.push_str("]}");
    Ok(out)
}

/// Whether `code` (at `addr`) holds an `e8` byte whose rel32 would land on
/// `callee`: a cheap filter before decoding, never a result by itself.
fn may_call(code: &[u8], addr: u64, callee: u64) -> bool {
    code.windows(5).enumerate().any(|(i, w)| {
        w[0] == 0xe8 && {
            let rel = i32::from_le_bytes([w[1], w[2], w[3], w[4]]) as i64;
            addr.wrapping_add(i as u64 + 5).wrapping_add(rel as u64) == callee
        }
    })
}

/// `(name, addr, size)` of the functions named `prefix*`, from `.symtab`, else
/// (stripped binaries) from `.gopclntab`; sorted by address, one per address.
fn functions(t: &Target, prefix: &str) -> Result<Vec<(String, u64, u64)>> {
    let usable = |name: &str, size: u64| name.starts_with(prefix) && size > 0 && size <= MAX_DISASM;
    let mut out: Vec<(String, u64, u64)> = t
        .facts()
        .funcs
        .iter()
        .filter(|f| usable(&f.name, f.size))
        .map(|f| (f.name.clone(), f.addr, f.size))
        .collect();
    if t.facts().funcs.is_empty() {
        t.each_pclntab_function(|name, addr, size| {
            if usable(name, size) {
                out.push((name.to_owned(), addr, size));
            }
        })?;
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    // Aliases share an address: list their calls once.
    out.dedup_by_key(|f| f.1);
    Ok(out)
}

/// Direct calls to `callee` from every function whose name starts with
/// `prefix`, found by decoding those functions:
/// `{callee, addr, calls: [{func, func_addr, addr, len}]}` where `addr`/`len`
/// are the call instruction's (the instruction after it starts at addr+len).
pub fn callers_json(t: &Target, callee: &str, prefix: &str) -> Result<String> {
    let target = t.function(callee)?.sym.addr;
    let mut out = String::from("{");
    json::key(&mut out, true, "callee");
    json::string(&mut out, callee);
    let _ = write!(out, ",\"addr\":{target},\"calls\":[");
    let mut first = true;
    for (name, addr, size) in functions(t, prefix)? {
        let code = match t.bytes_at(addr, size) {
            Some(c) if may_call(c, addr, target) => c,
            _ => continue,
        };
        let listing = x86::decode(code, addr);
        for i in listing.insns.iter().filter(|i| i.kind == x86::Kind::Call && i.target == Some(target)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str("{\"func\":");
            json::string(&mut out, &name);
            let _ = write!(out, ",\"func_addr\":{addr},\"addr\":{},\"len\":{}}}", i.addr, i.len);
        }
    }
    out.push_str("]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_call_finds_rel32_targets_only() {
        // nop; call 0x100a (rel32 = 4 from 0x1006)
        let code = [0x90, 0xe8, 0x04, 0x00, 0x00, 0x00];
        assert!(may_call(&code, 0x1000, 0x100a));
        assert!(!may_call(&code, 0x1000, 0x100b));
        assert!(!may_call(&code[..5], 0x1000, 0x100a));
        // backwards
        let code = [0xe8, 0xfb, 0xff, 0xff, 0xff];
        assert!(may_call(&code, 0x2000, 0x2000));
    }
}
