//! The record bpf/gmon.h defines (src/bpf/record.ts mirrors it for the host; test/record_test.ts
//! checks both against the header through [`LAYOUT`]).

const KIND: usize = 0;
const PID: usize = 4;
const GOID: usize = 8;
const TIME_NS: usize = 16;
const NFRAMES: usize = 24;
const FLAGS: usize = 28;
const FRAMES: usize = 32;
const MAX_FRAMES: usize = 127;

const CREATE: u32 = 1;
const EXIT: u32 = 2;
/// Flags: the stack filled every frame; bits 8-23, the probe that wrote the record.
pub const TRUNCATED: u32 = 1;
const PROBE_SHIFT: u32 = 8;
const PROBE_MASK: u32 = 0xffff;

/// The offsets above, in that order, the most frames, the kinds and the flags.
pub const LAYOUT: [usize; 13] = [
    KIND,
    PID,
    GOID,
    TIME_NS,
    NFRAMES,
    FLAGS,
    FRAMES,
    MAX_FRAMES,
    CREATE as usize,
    EXIT as usize,
    TRUNCATED as usize,
    PROBE_SHIFT as usize,
    PROBE_MASK as usize,
];

/// A creation's or an exit's header; its frames stay where they are.
pub struct Record {
    pub kind: u32,
    pub pid: u32,
    pub goid: u64,
    pub time_ns: u64,
    pub nframes: usize,
    pub flags: u32,
    /// The probe that wrote it (bits 8-23 of flags).
    pub probe: u32,
}

impl Record {
    // One bounds check and one load each (indexing byte by byte checks and loads four or eight times).
    #[inline]
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[inline]
    pub fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The creation or exit at `b[p..p + len]`; None for another kind or one that does not fit its
    /// own header (the host's to count).
    #[inline(always)]
    pub fn read(b: &[u8], p: usize, len: usize) -> Option<Record> {
        if len < FRAMES || p + len > b.len() {
            return None;
        }
        let kind = Self::u32_at(b, p + KIND);
        let nframes = Self::u32_at(b, p + NFRAMES) as usize;
        if (kind != CREATE && kind != EXIT) || nframes > MAX_FRAMES || FRAMES + nframes * 8 > len {
            return None;
        }
        let flags = Self::u32_at(b, p + FLAGS);
        Some(Record {
            kind,
            pid: Self::u32_at(b, p + PID),
            goid: Self::u64_at(b, p + GOID),
            time_ns: Self::u64_at(b, p + TIME_NS),
            nframes,
            flags,
            probe: (flags >> PROBE_SHIFT) & PROBE_MASK,
        })
    }

    pub fn is_create(&self) -> bool {
        self.kind == CREATE
    }

    /// The frames' bytes (little-endian u64 PCs, innermost first).
    pub fn pcs<'a>(&self, b: &'a [u8], p: usize) -> &'a [u8] {
        &b[p + FRAMES..p + FRAMES + self.nframes * 8]
    }

    /// A creation's stack as the stack cache keys it: the process's load bias (the first frame is the
    /// probe's own address, `addr` in the file) and the PCs. Only for a record with frames.
    pub fn stack<'a>(&self, b: &'a [u8], p: usize, addr: u64) -> (u64, &'a [u8]) {
        (Self::u64_at(b, p + FRAMES).wrapping_sub(addr), self.pcs(b, p))
    }
}
