//! One opened executable: the bytes, the cheap ELF facts computed on open and
//! the DWARF context built on first need.

use crate::buildinfo;
use crate::dwarf::{self, Dwarf};
use crate::elf::{self, ElfFacts, FuncSym};
use crate::error::{Error, Result};
use crate::json;
use std::fmt::Write;

pub struct Target {
    data: Vec<u8>,
    facts: ElfFacts,
    go_version: Option<String>,
    dwarf: Option<Dwarf>,
    /// Cached so that repeated info() calls do not rescan the type units.
    goid_offset: Option<Option<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub func: String,
    pub file: String,
    pub line: u32,
}

impl Frame {
    fn unknown() -> Frame {
        Frame { func: "?".into(), file: "?".into(), line: 0 }
    }
}

pub struct FunctionInfo<'a> {
    pub sym: &'a FuncSym,
    pub offset: u64,
}

/// Separators of the compact symbolize encoding; they are scrubbed from names
/// so that a hostile symbol cannot forge frames.
pub const FRAME_SEP: char = '\n';
pub const FIELD_SEP: char = '\t';
pub const PC_SEP: char = '\x1e';

fn scrub(s: &str) -> String {
    s.replace([FRAME_SEP, FIELD_SEP, PC_SEP], " ")
}

impl Target {
    pub fn open(data: Vec<u8>) -> Result<Target> {
        let facts = elf::parse(&data)?;
        let blob = match facts.buildinfo_range {
            Some((off, len)) => {
                let start = usize::try_from(off).ok();
                let end = start.and_then(|s| usize::try_from(len).ok().and_then(|l| s.checked_add(l)));
                match (start, end) {
                    (Some(s), Some(e)) => {
                        Some(data.get(s..e).ok_or_else(|| Error::Malformed(".go.buildinfo outside the file".into()))?)
                    }
                    _ => return Err(Error::Malformed(".go.buildinfo outside the file".into())),
                }
            }
            None => buildinfo::scan(&data),
        };
        let go_version = match blob {
            Some(blob) => {
                let raw = buildinfo::parse_version(blob, |addr, len| facts.read_vaddr(&data, addr, len))?;
                Some(buildinfo::release_token(&raw))
            }
            None => None,
        };
        if go_version.is_none() && !facts.has_gopclntab && !facts.has_runtime_symbols() {
            return Err(Error::NotGo);
        }
        Ok(Target { data, facts, go_version, dwarf: None, goid_offset: None })
    }

    fn dwarf(&mut self) -> Result<Option<&Dwarf>> {
        if !self.facts.has_dwarf {
            return Ok(None);
        }
        if self.dwarf.is_none() {
            self.dwarf = Some(dwarf::load(&self.data)?);
        }
        Ok(self.dwarf.as_ref())
    }

    pub fn go_version(&self) -> Option<&str> {
        self.go_version.as_deref()
    }

    pub fn facts(&self) -> &ElfFacts {
        &self.facts
    }

    pub fn goid_offset(&mut self) -> Result<Option<u64>> {
        if let Some(cached) = self.goid_offset {
            return Ok(cached);
        }
        let off = match self.dwarf()? {
            Some(d) => d.member_offset("runtime", "runtime.g", "goid")?,
            None => None,
        };
        self.goid_offset = Some(off);
        Ok(off)
    }

    pub fn info_json(&mut self) -> Result<String> {
        let goid = self.goid_offset()?;
        let f = &self.facts;
        let mut out = String::from("{");
        json::key(&mut out, true, "arch");
        json::string(&mut out, "x86_64");
        let _ = write!(out, ",\"pie\":{},\"go_version\":", f.pie);
        json::opt_string(&mut out, self.go_version.as_deref());
        let _ = write!(out, ",\"has_dwarf\":{},\"has_symtab\":{},\"goid_offset\":", f.has_dwarf, f.has_symtab);
        match goid {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"segments\":[");
        for (i, s) in f.segments.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"vaddr\":{},\"offset\":{},\"filesz\":{},\"memsz\":{},\"flags\":{}}}",
                s.vaddr, s.offset, s.filesz, s.memsz, s.flags
            );
        }
        out.push_str("]}");
        Ok(out)
    }

    pub fn function(&self, name: &str) -> Result<FunctionInfo<'_>> {
        let sym = self.facts.func_by_name(name).ok_or_else(|| Error::FunctionNotFound(name.to_owned()))?;
        let offset = self
            .facts
            .file_offset(sym.addr)
            .ok_or_else(|| Error::Malformed(format!("{name} at {:#x} is not in a loaded segment", sym.addr)))?;
        Ok(FunctionInfo { sym, offset })
    }

    pub fn function_json(&self, name: &str) -> Result<String> {
        let f = self.function(name)?;
        let mut out = String::from("{");
        json::key(&mut out, true, "name");
        json::string(&mut out, &f.sym.name);
        let _ = write!(out, ",\"addr\":{},\"size\":{},\"offset\":{}}}", f.sym.addr, f.sym.size, f.offset);
        Ok(out)
    }

    /// Frames for one pc, innermost first; never empty.
    pub fn frames(&mut self, pc: u64) -> Result<Vec<Frame>> {
        let from_dwarf = match self.dwarf()? {
            Some(d) => d.frames(pc)?,
            None => Vec::new(),
        };
        let symbol = || self.facts.func_at(pc).map(|f| f.name.clone());
        if from_dwarf.is_empty() {
            return Ok(vec![match symbol() {
                Some(func) => Frame { func, file: "?".into(), line: 0 },
                None => Frame::unknown(),
            }]);
        }
        Ok(from_dwarf
            .into_iter()
            .map(|f| Frame {
                func: f.func.or_else(symbol).unwrap_or_else(|| "?".into()),
                file: f.file.unwrap_or_else(|| "?".into()),
                line: f.line,
            })
            .collect())
    }

    pub fn symbolize_text(&mut self, pcs: &[u64]) -> Result<String> {
        let mut out = String::new();
        for (i, &pc) in pcs.iter().enumerate() {
            if i > 0 {
                out.push(PC_SEP);
            }
            for (j, frame) in self.frames(pc)?.iter().enumerate() {
                if j > 0 {
                    out.push(FRAME_SEP);
                }
                let _ = write!(out, "{}{FIELD_SEP}{}{FIELD_SEP}{}", scrub(&frame.func), scrub(&frame.file), frame.line);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rejects_garbage() {
        assert_eq!(Target::open(b"hello".to_vec()).err(), Some(Error::NotElf));
        assert!(matches!(Target::open(b"\x7fELF".to_vec()), Err(Error::Malformed(_))));
    }

    #[test]
    fn open_rejects_non_go_elf() {
        // Any C executable of the host will do; skip where there is none.
        let data = match std::fs::read("/bin/true") {
            Ok(d) => d,
            Err(_) => return,
        };
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Target::open(data.clone()).err(), Some(Error::NotGo));
            // Every truncation must come back as a value, never a panic.
            for cut in [16, 64, 100, data.len() / 2, data.len() - 1] {
                let _ = Target::open(data[..cut].to_vec());
            }
        }
    }

    #[test]
    fn scrub_separators() {
        assert_eq!(scrub("a\tb\nc\x1ed"), "a b c d");
    }
}
