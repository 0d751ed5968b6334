//! One opened executable: the bytes, the cheap ELF facts computed on open and
//! the DWARF context built on first need.

use crate::buildinfo;
use crate::dwarf::{self, Dwarf};
use crate::elf::{self, ElfFacts, FuncSym};
use crate::error::{Error, Result};
use crate::json;
use crate::pclntab::{FrameFacts, Pclntab};
use std::cell::RefCell;
use std::fmt::Write;

pub struct Target {
    data: Vec<u8>,
    facts: ElfFacts,
    go_version: Option<String>,
    dwarf: Option<Dwarf>,
    /// Cached so that repeated info() calls do not rescan the type units.
    goid_offset: Option<Option<u64>>,
    /// `.gopclntab`, located on first need (Ok(None): the file has none); a
    /// failure is kept too, so that a broken table is not searched per pc.
    pclntab: RefCell<Option<Result<Option<Pclntab>>>>,
    source: Source,
}

/// Where symbolization reads from: DWARF when present, else `.gopclntab`
/// (Auto); or one of them only, so tests can check both give the same frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Auto,
    Dwarf,
    Pclntab,
}

impl Source {
    pub fn from_code(code: u32) -> Option<Source> {
        match code {
            0 => Some(Source::Auto),
            1 => Some(Source::Dwarf),
            2 => Some(Source::Pclntab),
            _ => None,
        }
    }
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

pub struct FunctionInfo {
    pub sym: FuncSym,
    pub offset: u64,
}

/// Separators of the compact symbolize encoding; they are scrubbed from names
/// so that a hostile symbol cannot forge frames.
pub const FRAME_SEP: char = '\n';
pub const FIELD_SEP: char = '\t';
pub const PC_SEP: char = '\x1e';

/// Appends `s` with the separators replaced, without a temporary string.
fn push_scrubbed(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'\n' | b'\t' | 0x1e)) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        out.push(if matches!(c, FRAME_SEP | FIELD_SEP | PC_SEP) { ' ' } else { c });
    }
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
        Ok(Target { data, facts, go_version, dwarf: None, goid_offset: None, pclntab: RefCell::new(None), source: Source::Auto })
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

    pub fn set_source(&mut self, source: Source) {
        self.source = source;
    }

    /// Runs `f` on the `.gopclntab`, located and parsed on first need;
    /// Ok(None) when the file has none.
    pub fn with_pclntab<T>(&self, f: impl FnOnce(&Pclntab, &[u8], &ElfFacts) -> T) -> Result<Option<T>> {
        if self.pclntab.borrow().is_none() {
            let located = Pclntab::locate(&self.data, &self.facts);
            *self.pclntab.borrow_mut() = Some(located);
        }
        match self.pclntab.borrow().as_ref() {
            Some(Ok(Some(tab))) => Ok(Some(f(tab, &self.data, &self.facts))),
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(None),
        }
    }

    /// Calls `f(name, entry, size)` for every function of `.gopclntab` (for
    /// callers that must enumerate functions of a stripped binary).
    pub fn each_pclntab_function(&self, mut f: impl FnMut(&str, u64, u64)) -> Result<()> {
        self.with_pclntab(|tab, data, _| {
            for i in 0..tab.nfunc() {
                if let Some(func) = tab.func(data, i) {
                    f(tab.func_name(data, &func).unwrap_or("?"), func.entry, func.end.saturating_sub(func.entry));
                }
            }
        })?;
        Ok(())
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
        // A broken table is reported by the calls that need it, not here.
        let has_pclntab = matches!(self.with_pclntab(|_, _, _| ()), Ok(Some(())));
        let f = &self.facts;
        let mut out = String::from("{");
        json::key(&mut out, true, "arch");
        json::string(&mut out, "x86_64");
        let _ = write!(out, ",\"pie\":{},\"go_version\":", f.pie);
        json::opt_string(&mut out, self.go_version.as_deref());
        let _ = write!(out, ",\"has_dwarf\":{},\"has_symtab\":{},\"has_pclntab\":{has_pclntab},\"goid_offset\":", f.has_dwarf, f.has_symtab);
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

    /// A function by exact name: from `.symtab`, else from `.gopclntab`
    /// (only from `.gopclntab` when the source is forced to it).
    pub fn function(&self, name: &str) -> Result<FunctionInfo> {
        // Forced to .gopclntab (for tests), the symbol table is not asked.
        let from_symtab = if self.source == Source::Pclntab { None } else { self.facts.func_by_name(name) };
        let sym = match from_symtab {
            Some(sym) => sym.clone(),
            None => {
                let f = self.with_pclntab(|tab, data, _| tab.func_by_name(data, name))?.flatten();
                let f = f.ok_or_else(|| Error::FunctionNotFound(name.to_owned()))?;
                FuncSym { name: name.to_owned(), addr: f.entry, size: f.end.saturating_sub(f.entry) }
            }
        };
        if sym.size >= elf::MAX_ADDR {
            return Err(Error::Malformed(format!("{name} has size {:#x}", sym.size)));
        }
        let offset = self
            .facts
            .file_offset(sym.addr)
            .ok_or_else(|| Error::Malformed(format!("{name} at {:#x} is not in a loaded segment", sym.addr)))?;
        Ok(FunctionInfo { sym, offset })
    }

    /// `len` bytes at virtual address `addr` as loaded from the file (code to decode).
    pub fn bytes_at(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.facts.read_vaddr(&self.data, addr, len)
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
        let mut out = Vec::new();
        self.each_frame(pc, |func, file, line, _| out.push(Frame { func: func.to_owned(), file: file.to_owned(), line }))?;
        Ok(out)
    }

    /// The funcID .gopclntab gives autogenerated wrappers in this release.
    fn wrapper_id(&self) -> Option<u8> {
        let minor = self.go_version.as_deref()?.strip_prefix("go1.")?.split('.').next()?.parse().ok()?;
        crate::pclntab::wrapper_func_id(minor)
    }

    /// Calls `emit(func, file, line, wrapper)` for each frame of `pc`,
    /// innermost first, at least once. `wrapper` marks autogenerated wrapper
    /// frames (known from .gopclntab), which runtime.CallersFrames leaves out.
    pub fn each_frame(&mut self, pc: u64, mut emit: impl FnMut(&str, &str, u32, bool)) -> Result<()> {
        let wrapper_id = self.wrapper_id();
        let is_wrapper = |id: u8| Some(id) == wrapper_id;
        let use_dwarf = match self.source {
            Source::Dwarf => true,
            Source::Pclntab => false,
            Source::Auto => self.facts.has_dwarf,
        };
        if !use_dwarf {
            let found = self.with_pclntab(|tab, data, facts| tab.frames(data, facts, pc, |f, file, line, id| emit(f, file, line, is_wrapper(id))))?;
            if found == Some(true) {
                return Ok(());
            }
            match self.facts.func_at(pc) {
                Some(f) => emit(&f.name, "?", 0, false),
                None => emit("?", "?", 0, false),
            }
            return Ok(());
        }
        let frames = self.dwarf_frames(pc)?;
        // DWARF has no lines for some code (autogenerated wrappers and
        // equality functions: runtime.CallersFrames says "<autogenerated>:1"):
        // in auto mode .gopclntab answers for those.
        let lineless = frames.iter().all(|f| f.file == "?");
        if self.source == Source::Auto && lineless {
            let found = self.with_pclntab(|tab, data, facts| tab.frames(data, facts, pc, |f, file, line, id| emit(f, file, line, is_wrapper(id))));
            if matches!(found, Ok(Some(true))) {
                return Ok(());
            }
        }
        // Wrapper marks come from .gopclntab's view of the same pc, when it
        // expands to as many frames as DWARF's.
        let mut ids = [0u8; 16];
        let mut n = 0;
        if wrapper_id.is_some() {
            let _ = self.with_pclntab(|tab, data, facts| {
                tab.frames(data, facts, pc, |_, _, _, id| {
                    if let Some(slot) = ids.get_mut(n) {
                        *slot = id;
                    }
                    n += 1;
                })
            });
        }
        let marks = n == frames.len() && n <= ids.len();
        for (i, f) in frames.iter().enumerate() {
            emit(&f.func, &f.file, f.line, marks && is_wrapper(ids[i]));
        }
        Ok(())
    }

    fn dwarf_frames(&mut self, pc: u64) -> Result<Vec<Frame>> {
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

    /// JSON `{"size":N|null,"members":[["name",offset],...]}` for a struct type from DWARF,
    /// or `null` when the target has no DWARF or no such type.
    pub fn struct_json(&mut self, type_name: &str) -> Result<String> {
        let layout = match self.dwarf()? {
            Some(d) => d.struct_layout("runtime", type_name)?,
            None => None,
        };
        let layout = match layout {
            Some(l) => l,
            None => return Ok("null".into()),
        };
        let mut out = String::from("{\"size\":");
        match layout.size {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"members\":[");
        for (i, (name, off)) in layout.members.iter().enumerate() {
            out.push_str(if i > 0 { ",[" } else { "[" });
            json::string(&mut out, name);
            let _ = write!(out, ",{off}]");
        }
        out.push_str("]}");
        Ok(out)
    }

    /// JSON `{"addr":N,"size":N}` for a data symbol of `.symtab`, or `null`.
    pub fn symbol_json(&self, name: &str) -> String {
        match ElfFacts::data_symbol(&self.data, name) {
            Some((addr, size)) => format!("{{\"addr\":{addr},\"size\":{size}}}"),
            None => "null".into(),
        }
    }

    /// JSON array, one entry per (pc, sym_pc) pair: the frame facts of `Pclntab::frame_facts`,
    /// or `null` where no function covers pc.
    pub fn frame_facts_json(&self, pairs: &[(u64, u64)]) -> Result<String> {
        let mut out = String::from("[");
        self.with_pclntab(|tab, data, facts| {
            for (i, &(pc, sym_pc)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match tab.frame_facts(data, facts, pc, sym_pc) {
                    Some(f) => frame_facts_entry(&mut out, &f),
                    None => out.push_str("null"),
                }
            }
        })?
        .ok_or_else(|| Error::Malformed("no .gopclntab".into()))?;
        out.push(']');
        Ok(out)
    }

    pub fn symbolize_text(&mut self, pcs: &[u64]) -> Result<String> {
        let mut out = String::new();
        for (i, &pc) in pcs.iter().enumerate() {
            if i > 0 {
                out.push(PC_SEP);
            }
            let mut first = true;
            self.each_frame(pc, |func, file, line, wrapper| {
                if !first {
                    out.push(FRAME_SEP);
                }
                first = false;
                push_scrubbed(&mut out, func);
                out.push(FIELD_SEP);
                push_scrubbed(&mut out, file);
                let _ = write!(out, "{FIELD_SEP}{line}");
                if wrapper {
                    // A fourth field, "w": an autogenerated wrapper frame.
                    out.push(FIELD_SEP);
                    out.push('w');
                }
            })?;
        }
        Ok(out)
    }
}

fn frame_facts_entry(out: &mut String, f: &FrameFacts) {
    let _ = write!(out, "{{\"entry\":{},\"end\":{},\"name\":", f.entry, f.end);
    json::string(out, &f.name);
    let _ = write!(out, ",\"func_id\":{},\"flag\":{},\"spdelta\":", f.func_id, f.flag);
    match f.spdelta {
        Some(d) => {
            let _ = write!(out, "{d}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"args\":");
    bytes_json(out, f.args.as_deref());
    out.push_str(",\"live_start\":");
    match f.live_start {
        Some(b) => {
            let _ = write!(out, "{b}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"live\":");
    bytes_json(out, Some(&f.live));
    out.push('}');
}

fn bytes_json(out: &mut String, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push_str("null"),
        Some(b) => {
            out.push('[');
            for (i, v) in b.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{v}");
            }
            out.push(']');
        }
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
        let mut out = String::new();
        push_scrubbed(&mut out, "a\tb\nc\x1ed");
        assert_eq!(out, "a b c d");
    }
}
