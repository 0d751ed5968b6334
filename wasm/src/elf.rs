//! Facts about the executable that do not need DWARF: header checks, PT_LOAD
//! segments, section presence and the function symbols of `.symtab`.
//!
//! Everything is copied out into owned values so that the target can keep the
//! raw bytes and these facts side by side without self-borrowing.

use crate::error::{Error, Result};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SymbolKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncSym {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ElfFacts {
    pub pie: bool,
    pub segments: Vec<Segment>,
    pub has_dwarf: bool,
    pub has_symtab: bool,
    pub has_gopclntab: bool,
    /// File range of `.go.buildinfo` when section headers name it.
    pub buildinfo_range: Option<(u64, u64)>,
    /// Sorted by address so that pc lookups can binary-search.
    pub funcs: Vec<FuncSym>,
}

const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const E_MACHINE: usize = 18;

fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_386 => "x86".into(),
        elf::EM_ARM => "arm".into(),
        elf::EM_AARCH64 => "aarch64".into(),
        elf::EM_RISCV => "riscv".into(),
        elf::EM_PPC => "ppc".into(),
        elf::EM_PPC64 => "ppc64".into(),
        elf::EM_S390 => "s390x".into(),
        elf::EM_MIPS => "mips".into(),
        elf::EM_LOONGARCH => "loongarch64".into(),
        elf::EM_SPARCV9 => "sparcv9".into(),
        other => format!("machine {other}"),
    }
}

/// Checks identity by hand before handing the file to `object`, so that an
/// arm64 binary is reported as such rather than as whatever `object` trips on.
pub fn check_ident(data: &[u8]) -> Result<()> {
    if data.get(..4) != Some(&elf::ELFMAG[..]) {
        return Err(Error::NotElf);
    }
    let ident = data.get(..E_MACHINE + 2).ok_or_else(|| Error::Malformed("header cut short".into()))?;
    let machine_bytes = [ident[E_MACHINE], ident[E_MACHINE + 1]];
    let machine = match ident[EI_DATA] {
        elf::ELFDATA2LSB => u16::from_le_bytes(machine_bytes),
        elf::ELFDATA2MSB => u16::from_be_bytes(machine_bytes),
        other => return Err(Error::Malformed(format!("unknown data encoding {other}"))),
    };
    if machine != elf::EM_X86_64 {
        return Err(Error::WrongArch(machine_name(machine)));
    }
    if ident[EI_CLASS] != elf::ELFCLASS64 {
        return Err(Error::WrongArch("x86-64 with 32-bit ELF class (x32)".into()));
    }
    if ident[EI_DATA] != elf::ELFDATA2LSB {
        return Err(Error::Malformed("big-endian x86-64".into()));
    }
    Ok(())
}

/// Addresses, offsets and sizes handed to the host must stay below this.
pub const MAX_ADDR: u64 = 1 << 53;

fn malformed(e: object::Error) -> Error {
    Error::Malformed(e.to_string())
}

pub fn parse(data: &[u8]) -> Result<ElfFacts> {
    check_ident(data)?;
    let file = ElfFile64::<Endianness>::parse(data).map_err(malformed)?;
    let endian = file.endian();
    let header = file.raw_header();

    let mut segments = Vec::new();
    for ph in file.raw_segments() {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        // The host keeps these as JavaScript numbers, exact below 2^53; no
        // x86-64 program maps anything near that.
        let fields = [ph.p_vaddr(endian), ph.p_offset(endian), ph.p_filesz(endian), ph.p_memsz(endian)];
        if fields.iter().any(|&v| v >= MAX_ADDR) || fields[0].saturating_add(fields[3]) >= MAX_ADDR {
            return Err(Error::Malformed("PT_LOAD segment beyond 2^53".into()));
        }
        segments.push(Segment {
            vaddr: ph.p_vaddr(endian),
            offset: ph.p_offset(endian),
            filesz: ph.p_filesz(endian),
            memsz: ph.p_memsz(endian),
            flags: ph.p_flags(endian),
        });
    }

    // object maps ".debug_info" onto ".zdebug_info" too, which older Go linkers wrote.
    let has_dwarf = file.section_by_name(".debug_info").is_some();
    let has_symtab = file.section_by_name(".symtab").map_or(false, |s| s.size() > 0);
    let has_gopclntab = file.section_by_name(".gopclntab").is_some();
    let buildinfo_range = file.section_by_name(".go.buildinfo").and_then(|s| s.file_range());

    let mut funcs = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() {
            continue;
        }
        // A broken name entry costs that one symbol, not the whole target.
        if let Ok(name) = sym.name() {
            funcs.push(FuncSym { name: name.to_owned(), addr: sym.address(), size: sym.size() });
        }
    }
    funcs.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.name.cmp(&b.name)));

    Ok(ElfFacts {
        pie: header.e_type(endian) == elf::ET_DYN,
        segments,
        has_dwarf,
        has_symtab,
        has_gopclntab,
        buildinfo_range,
        funcs,
    })
}

impl ElfFacts {
    /// The PT_LOAD segment whose file-backed part holds `addr`: a uprobe needs
    /// a file offset, so bss-only addresses do not count.
    pub fn segment_for(&self, addr: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| addr >= s.vaddr && s.vaddr.checked_add(s.filesz).map_or(false, |end| addr < end))
    }

    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        let seg = self.segment_for(addr)?;
        (addr - seg.vaddr).checked_add(seg.offset)
    }

    /// Bytes at a virtual address as the loader would map them from the file.
    pub fn read_vaddr<'d>(&self, data: &'d [u8], addr: u64, len: u64) -> Option<&'d [u8]> {
        let seg = self.segment_for(addr)?;
        let end = addr.checked_add(len)?;
        if end > seg.vaddr.checked_add(seg.filesz)? {
            return None;
        }
        let start = usize::try_from(self.file_offset(addr)?).ok()?;
        let len = usize::try_from(len).ok()?;
        data.get(start..start.checked_add(len)?)
    }

    pub fn func_by_name(&self, name: &str) -> Option<&FuncSym> {
        self.funcs.iter().find(|f| f.name == name)
    }

    /// The symbol covering `pc`; zero-sized symbols only match their own address.
    pub fn func_at(&self, pc: u64) -> Option<&FuncSym> {
        let idx = self.funcs.partition_point(|f| f.addr <= pc);
        let f = self.funcs.get(idx.checked_sub(1)?)?;
        let end = f.addr.checked_add(f.size.max(1))?;
        (pc < end).then_some(f)
    }

    /// A data symbol (object) of `.symtab` by exact name: (address, size). The table is
    /// parsed again per call: only a handful of globals are ever looked up.
    pub fn data_symbol(data: &[u8], name: &str) -> Option<(u64, u64)> {
        let file = ElfFile64::<Endianness>::parse(data).ok()?;
        file.symbols()
            .filter(|s| s.kind() == SymbolKind::Data && s.is_definition())
            .find(|s| s.name() == Ok(name))
            .map(|s| (s.address(), s.size()))
    }

    pub fn has_runtime_symbols(&self) -> bool {
        self.funcs.iter().any(|f| f.name.starts_with("runtime."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&elf::ELFMAG);
        h[EI_CLASS] = class;
        h[EI_DATA] = data;
        h[E_MACHINE..E_MACHINE + 2].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn rejects_non_elf() {
        assert_eq!(check_ident(b"#!/bin/sh\n").unwrap_err(), Error::NotElf);
        assert_eq!(check_ident(b"").unwrap_err(), Error::NotElf);
    }

    #[test]
    fn names_foreign_machines() {
        let err = check_ident(&header(elf::ELFCLASS64, elf::ELFDATA2LSB, elf::EM_AARCH64)).unwrap_err();
        assert_eq!(err.to_string(), "ELF for aarch64, not x86-64");
        let err = check_ident(&header(elf::ELFCLASS32, elf::ELFDATA2LSB, elf::EM_386)).unwrap_err();
        assert_eq!(err.to_string(), "ELF for x86, not x86-64");
    }

    #[test]
    fn truncated_header_is_malformed() {
        assert!(matches!(check_ident(b"\x7fELF\x02\x01"), Err(Error::Malformed(_))));
        let h = header(elf::ELFCLASS64, elf::ELFDATA2LSB, elf::EM_X86_64);
        assert!(check_ident(&h).is_ok());
        // A valid identity but nothing behind it must not panic in object.
        assert!(matches!(parse(&h[..40]), Err(Error::Malformed(_))));
    }

    #[test]
    fn func_at_respects_sizes() {
        let facts = ElfFacts {
            pie: false,
            segments: vec![],
            has_dwarf: false,
            has_symtab: true,
            has_gopclntab: false,
            buildinfo_range: None,
            funcs: vec![
                FuncSym { name: "a".into(), addr: 0x1000, size: 0x10 },
                FuncSym { name: "b".into(), addr: 0x1020, size: 0x10 },
            ],
        };
        assert_eq!(facts.func_at(0x100f).map(|f| f.name.as_str()), Some("a"));
        assert_eq!(facts.func_at(0x1010), None);
        assert_eq!(facts.func_at(0xfff), None);
        assert_eq!(facts.func_at(u64::MAX).map(|f| f.name.as_str()), None);
    }
}
