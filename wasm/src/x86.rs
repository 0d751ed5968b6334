//! x86-64 decoding of a function's machine code for probe placement.
//!
//! Instruction boundaries, branch targets and operands come from iced-x86;
//! nothing here guesses a length. On top of that, [`kernel_emulates`] applies
//! the Linux x86 uprobe rules (arch/x86/kernel/uprobes.c, `branch_setup_xol_ops`
//! and `push_setup_xol_ops`) to one decoded instruction's bytes: an emulated
//! instruction costs one trap, anything else is single-stepped out of line (a
//! second trap).

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};
use std::fmt::Write;

/// What a probe placement cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Direct or indirect call.
    Call,
    /// Conditional branch (jcc, also jrcxz/loop, which the kernel does not emulate).
    Jcc,
    /// Unconditional direct or indirect jump.
    Jmp,
    Nop,
    Push,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Jcc => "jcc",
            Kind::Jmp => "jmp",
            Kind::Nop => "nop",
            Kind::Push => "push",
            Kind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    pub addr: u64,
    pub len: usize,
    pub kind: Kind,
    /// Absolute target of a direct call/jmp/jcc.
    pub target: Option<u64>,
    /// True when every supported kernel (5.15 and later) emulates a uprobe here.
    pub emulated: bool,
    /// Intel-syntax text, e.g. `cmp rsp,[r14+0x10]`, `call 0x4543c0`.
    pub text: String,
}

/// A decoded function; `complete` is false when an undecodable byte sequence
/// stopped the decoder (nothing past that point is listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub insns: Vec<Insn>,
    pub complete: bool,
}

/// Decodes `code`, which is loaded at `addr`, in 64-bit mode.
pub fn decode(code: &[u8], addr: u64) -> Listing {
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut insns = Vec::new();
    while decoder.can_decode() {
        let start = decoder.position();
        decoder.decode_out(&mut ins);
        if ins.is_invalid() {
            return Listing { insns, complete: false };
        }
        let raw = &code[start..start + ins.len()];
        insns.push(Insn {
            addr: ins.ip(),
            len: ins.len(),
            kind: kind(&ins),
            target: target(&ins),
            emulated: kernel_emulates(raw),
            text: text(&ins),
        });
    }
    Listing { insns, complete: true }
}

fn kind(ins: &Instruction) -> Kind {
    match ins.flow_control() {
        FlowControl::Call | FlowControl::IndirectCall => Kind::Call,
        FlowControl::ConditionalBranch => Kind::Jcc,
        FlowControl::UnconditionalBranch | FlowControl::IndirectBranch => Kind::Jmp,
        _ => match ins.mnemonic() {
            Mnemonic::Nop => Kind::Nop,
            Mnemonic::Push => Kind::Push,
            _ => Kind::Other,
        },
    }
}

fn target(ins: &Instruction) -> Option<u64> {
    match ins.op0_kind() {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => Some(ins.near_branch_target()),
        _ => None,
    }
}

/// Legacy prefixes the kernel's decoder skips before the opcode.
fn is_legacy_prefix(b: u8) -> bool {
    matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3)
}

/// Whether a uprobe on this one instruction (`raw`: exactly its bytes, as the
/// decoder delimited them) is emulated by the kernel rather than single-stepped.
///
/// The rules are those every kernel since 5.15 applies, so the answer is
/// conservative on newer kernels (which also emulate multi-byte `0f 1f` nops):
/// - any es/cs/ss/ds segment or lock prefix: the probe is refused outright;
/// - `call rel32`, `jmp rel8/rel32`, `jcc rel8/rel32`: emulated unless a 0x66
///   prefix is present (then the probe is refused);
/// - `nop`: the one-byte 0x90 only (`66 90` is refused before Linux 6.2, and
///   multi-byte nops are single-stepped before the kernel learnt `insn_is_nop`);
/// - `push r64`: one byte `50+r`, or exactly `41 50+r` for r8-r15.
pub fn kernel_emulates(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() && is_legacy_prefix(raw[i]) {
        i += 1;
    }
    let prefixes = &raw[..i];
    if prefixes.iter().any(|p| matches!(p, 0x26 | 0x2e | 0x36 | 0x3e | 0xf0)) {
        return false;
    }
    let rex = raw.get(i).map_or(false, |b| (0x40..=0x4f).contains(b));
    if rex {
        i += 1;
    }
    let has_66 = prefixes.contains(&0x66);
    match raw.get(i) {
        Some(0x90) => raw.len() == 1,
        Some(0xe8 | 0xe9 | 0xeb | 0x70..=0x7f) => !has_66,
        Some(0x0f) => matches!(raw.get(i + 1), Some(0x80..=0x8f)) && !has_66,
        Some(0x50..=0x57) => raw.len() == 1 || (raw.len() == 2 && raw[0] == 0x41),
        _ => false,
    }
}

fn reg_name(out: &mut String, r: Register) {
    let _ = write!(out, "{}", format!("{r:?}").to_ascii_lowercase());
}

fn text(ins: &Instruction) -> String {
    let mut out = format!("{:?}", ins.mnemonic()).to_ascii_lowercase();
    for i in 0..ins.op_count() {
        out.push(if i == 0 { ' ' } else { ',' });
        match ins.op_kind(i) {
            OpKind::Register => reg_name(&mut out, ins.op_register(i)),
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                let _ = write!(out, "{:#x}", ins.near_branch_target());
            }
            OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => {
                let _ = write!(out, "{:#x}", ins.immediate(i));
            }
            OpKind::Memory => memory(&mut out, ins),
            _ => out.push('?'),
        }
    }
    out
}

fn memory(out: &mut String, ins: &Instruction) {
    if ins.segment_prefix() != Register::None {
        reg_name(out, ins.segment_prefix());
        out.push(':');
    }
    out.push('[');
    if ins.is_ip_rel_memory_operand() {
        let _ = write!(out, "{:#x}", ins.ip_rel_memory_address());
    } else {
        let mut any = false;
        if ins.memory_base() != Register::None {
            reg_name(out, ins.memory_base());
            any = true;
        }
        if ins.memory_index() != Register::None {
            if any {
                out.push('+');
            }
            reg_name(out, ins.memory_index());
            if ins.memory_index_scale() > 1 {
                let _ = write!(out, "*{}", ins.memory_index_scale());
            }
            any = true;
        }
        let disp = ins.memory_displacement64() as i64;
        if !any {
            let _ = write!(out, "{:#x}", disp as u64);
        } else if disp < 0 {
            let _ = write!(out, "-{:#x}", disp.unsigned_abs());
        } else if disp > 0 {
            let _ = write!(out, "+{disp:#x}");
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], addr: u64) -> Insn {
        let l = decode(bytes, addr);
        assert!(l.complete);
        assert_eq!(l.insns.len(), 1, "{:?}", l.insns);
        l.insns.into_iter().next().unwrap()
    }

    #[test]
    fn small_frame_prologue() {
        // Go 1.26 runtime.goexit1: cmp rsp,[r14+0x10]; jbe +0x8c; push rbp; mov rbp,rsp
        let code = [
            0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x8c, 0x00, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5,
        ];
        let l = decode(&code, 0x452c60);
        assert!(l.complete);
        let got: Vec<_> = l.insns.iter().map(|i| (i.addr, i.len, i.kind, i.emulated, i.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (0x452c60, 4, Kind::Other, false, "cmp rsp,[r14+0x10]"),
                (0x452c64, 6, Kind::Jcc, true, "jbe 0x452cf6"),
                (0x452c6a, 1, Kind::Push, true, "push rbp"),
                (0x452c6b, 3, Kind::Other, false, "mov rbp,rsp"),
            ]
        );
        assert_eq!(l.insns[1].target, Some(0x452cf6));
        assert_eq!(l.insns[0].target, None);
    }

    #[test]
    fn medium_and_large_frame_prologues() {
        // lea r12,[rsp-0x88]; cmp r12,[r14+0x10]; jbe rel8
        let code = [0x4c, 0x8d, 0x64, 0x24, 0x78 ^ 0xf0, 0x4d, 0x3b, 0x66, 0x10, 0x76, 0x10];
        let l = decode(&code, 0x1000);
        let texts: Vec<_> = l.insns.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, vec!["lea r12,[rsp-0x78]", "cmp r12,[r14+0x10]", "jbe 0x101b"]);
        assert!(l.insns[2].emulated && l.insns[2].kind == Kind::Jcc);
        // mov r12,rsp; sub r12,0x2000; jb rel32; cmp r12,[r14+0x10]; jbe rel32
        let code = [
            0x49, 0x89, 0xe4, 0x49, 0x81, 0xec, 0x00, 0x20, 0x00, 0x00, 0x0f, 0x82, 0x10, 0x00, 0x00, 0x00, 0x4d,
            0x3b, 0x66, 0x10, 0x0f, 0x86, 0x00, 0x00, 0x00, 0x00,
        ];
        let l = decode(&code, 0x2000);
        let got: Vec<_> = l.insns.iter().map(|i| (i.kind, i.emulated, i.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Kind::Other, false, "mov r12,rsp"),
                (Kind::Other, false, "sub r12,0x2000"),
                (Kind::Jcc, true, "jb 0x2020"),
                (Kind::Other, false, "cmp r12,[r14+0x10]"),
                (Kind::Jcc, true, "jbe 0x201a"),
            ]
        );
    }

    #[test]
    fn call_targets_forward_and_backward() {
        // call rel32 at 0x4543c0 to runtime.runqput (0x459460)
        let i = one(&[0xe8, 0x9b, 0x50, 0x00, 0x00], 0x4543c0);
        assert_eq!((i.kind, i.target, i.emulated, i.len), (Kind::Call, Some(0x459460), true, 5));
        assert_eq!(i.text, "call 0x459460");
        // negative displacement
        let i = one(&[0xe8, 0xf6, 0xff, 0xff, 0xff], 0x1000);
        assert_eq!(i.target, Some(0x1000 + 5 - 10));
        // jmp rel8 back to the entry, as Go's morestack tail does
        let i = one(&[0xeb, 0x9e], 0x4543e0);
        assert_eq!((i.kind, i.target, i.emulated), (Kind::Jmp, Some(0x454380), true));
        // indirect call through a register: a call, no target, single-stepped
        let i = one(&[0xff, 0xd2], 0x1000);
        assert_eq!((i.kind, i.target, i.emulated, i.text.as_str()), (Kind::Call, None, false, "call rdx"));
    }

    #[test]
    fn prefixes_follow_the_kernel() {
        // 0x66 on a branch: the kernel refuses it.
        assert!(!kernel_emulates(&[0x66, 0xe8, 0, 0]));
        assert!(!kernel_emulates(&[0x66, 0x0f, 0x84, 0, 0]));
        // branch-hint/segment (cs, ds) and lock prefixes: refused.
        assert!(!kernel_emulates(&[0x3e, 0x74, 0x00]));
        assert!(!kernel_emulates(&[0x2e, 0x74, 0x00]));
        // REX and bnd (f2) do not matter for branches.
        assert!(kernel_emulates(&[0x48, 0xe8, 0, 0, 0, 0]));
        assert!(kernel_emulates(&[0xf2, 0xe9, 0, 0, 0, 0]));
        // every jcc condition, short and near
        for op in 0x70..=0x7fu8 {
            assert!(kernel_emulates(&[op, 0x00]), "{op:#x}");
            assert!(kernel_emulates(&[0x0f, op + 0x10, 0, 0, 0, 0]), "0f {:#x}", op + 0x10);
        }
        // jrcxz / loop: conditional, not emulated
        let i = one(&[0xe3, 0x00], 0x1000);
        assert_eq!((i.kind, i.emulated), (Kind::Jcc, false));
    }

    #[test]
    fn nops_and_pushes() {
        assert_eq!((one(&[0x90], 0).kind, one(&[0x90], 0).emulated), (Kind::Nop, true));
        // 66 90 (Go's 2-byte padding): refused by kernels before 6.2, so not counted
        let i = one(&[0x66, 0x90], 0);
        assert_eq!((i.kind, i.emulated, i.len), (Kind::Nop, false, 2));
        // multi-byte nop: emulated only by recent kernels, so not counted
        let i = one(&[0x0f, 0x1f, 0x44, 0x00, 0x00], 0);
        assert_eq!((i.kind, i.emulated, i.len), (Kind::Nop, false, 5));
        // pause (f3 90) and xchg r8d,eax (41 90) are no nops
        assert!(!kernel_emulates(&[0xf3, 0x90]));
        assert_eq!(one(&[0x41, 0x90], 0).kind, Kind::Other);
        assert!(!kernel_emulates(&[0x41, 0x90]));
        // push rbp, push r12, push r14: emulated; rex.w push, push imm, push mem: not
        assert_eq!((one(&[0x55], 0).kind, one(&[0x55], 0).emulated), (Kind::Push, true));
        let i = one(&[0x41, 0x54], 0);
        assert_eq!((i.kind, i.emulated, i.text.as_str()), (Kind::Push, true, "push r12"));
        assert!(kernel_emulates(&[0x41, 0x56]));
        assert!(!kernel_emulates(&[0x48, 0x55]));
        assert!(!kernel_emulates(&[0x66, 0x55]));
        let i = one(&[0x6a, 0x01], 0);
        assert_eq!((i.kind, i.emulated), (Kind::Push, false));
        let i = one(&[0xff, 0x76, 0x10], 0);
        assert_eq!((i.kind, i.emulated, i.text.as_str()), (Kind::Push, false, "push [rsi+0x10]"));
    }

    #[test]
    fn rip_relative_and_segment_operands() {
        // cmp byte [rip+0x16cf0c],0 at 0x4543c5 (runtime.mainStarted)
        let i = one(&[0x80, 0x3d, 0x0c, 0xcf, 0x16, 0x00, 0x00], 0x4543c5);
        assert_eq!(i.text, "cmp [0x5c12d8],0x0");
        // mov rcx,fs:[0xfffffffffffffff8]
        let i = one(&[0x64, 0x48, 0x8b, 0x0c, 0x25, 0xf8, 0xff, 0xff, 0xff], 0);
        assert_eq!(i.text, "mov rcx,fs:[0xfffffffffffffff8]");
        assert!(!i.emulated);
        // base + index*scale + disp
        let i = one(&[0x48, 0x8b, 0x44, 0xc8, 0x08], 0);
        assert_eq!(i.text, "mov rax,[rax+rcx*8+0x8]");
    }

    #[test]
    fn boundaries_never_split_and_bad_bytes_stop() {
        // A truncated call at the end: not listed, and the listing says so.
        let l = decode(&[0x90, 0xe8, 0x00, 0x00], 0x10);
        assert_eq!(l.insns.len(), 1);
        assert!(!l.complete);
        // Every listed instruction starts where the previous ended.
        let code = [0x49, 0x3b, 0x66, 0x10, 0x76, 0x05, 0x66, 0x90, 0x0f, 0x1f, 0x00, 0xc3];
        let l = decode(&code, 0x100);
        assert!(l.complete);
        let mut at = 0x100;
        for i in &l.insns {
            assert_eq!(i.addr, at);
            at += i.len as u64;
        }
        assert_eq!(at, 0x100 + code.len() as u64);
        // Empty input: nothing, complete.
        assert_eq!(decode(&[], 0), Listing { insns: vec![], complete: true });
    }
}
