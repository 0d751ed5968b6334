//! The drain's state and its record loop: what the exports in lib.rs act on.

use crate::lines::{Lines, Missing};
use crate::live::{self, Created, Live};
use crate::record::{self, Record};
use crate::stacks::StackCache;

/// Why [`run`] returned.
pub const DONE: u32 = 0;
/// The record at the cursor is the host's to apply (another kind, an unknown probe's, malformed).
pub const RECORD: u32 = 1;
/// The record's probe is unknown here: the host tells it ([`set_probe`]) and runs again from it.
pub const PROBE: u32 = 2;
/// The record's process is not judged: the host tells ([`set_verdict`]) and runs again from it.
pub const PID: u32 = 3;
/// The record's stack is not cached: the host interns it ([`learn`]) and runs again from it.
pub const STACK: u32 = 4;
/// The record's (pid, stack) has no aggregate: the host numbers it ([`set_agg`]) and runs again.
pub const AGG: u32 = 5;
/// The record's line needs this millisecond's heads ([`set_heads`]); the host runs again from it.
pub const HEADS: u32 = 6;
/// The record's line needs a stack's attributes ([`set_attrs`]); the host runs again from it.
pub const ATTRS: u32 = 7;
/// The record's line needs its process's end ([`set_end`]); the host runs again from it.
pub const END: u32 = 8;
/// The lines' buffer is full: the host empties it and runs again from the cursor.
pub const FLUSH: u32 = 9;

/// The kernel's ring record header (kernel/bpf/ringbuf.c): its size, length bits and discard bit.
const RING_HEADER: usize = 8;
const RING_LEN: u32 = 0x3fff_ffff;
const RING_DISCARD: u32 = 0x4000_0000;

/// Bytes of lines held before the host is asked to take them (its writes cost the kernel less per
/// byte up to about this).
pub const FLUSH_AT: usize = 1 << 20;

/// Probe kinds, as the host tells them; any other: its records are the host's.
pub const PROBE_CREATE: u32 = 1;
pub const PROBE_EXIT: u32 = 2;

/// The mailbox: what the host reads after a call, as f64s (see src/state/core.ts, its mirror).
pub const MB_CURSOR: usize = 0;
pub const MB_NEXT: usize = 1;
pub const MB_CREATED: usize = 2;
pub const MB_EXITED: usize = 3;
pub const MB_PREEXISTING: usize = 4;
pub const MB_LIVE: usize = 5;
pub const MB_LIFETIME: usize = 6;
pub const MB_OUT: usize = 7;
pub const MB_OUT_LEN: usize = 8;
pub const MB_ASK_PID: usize = 9;
pub const MB_ASK_STACK: usize = 10;
pub const MB_ASK_SLOT: usize = 26;
pub const MB_ASK_MS: usize = 27;
pub const MB_SCRATCH: usize = 11;
pub const MB_SLOTS: usize = 12;
pub const MB_SLAB_BYTES: usize = 13;
pub const MB_ARRAYS: usize = 14;
pub const MB_SIZE: usize = 32;
// MB_ARRAYS takes 8 slots: 14 to 21 (22 to 25 unused).

#[derive(Clone, Copy, Default)]
pub struct Probe {
    pub kind: u32,
    pub table: u32,
    pub addr: u64,
    /// An exit probe's stack (the one frame of its lines): slot and id.
    pub exit_slot: u32,
    pub exit_id: u32,
}

pub struct Core {
    pub live: Live,
    pub stacks: StackCache,
    pub probes: Vec<Option<Probe>>,
    /// Judged processes, direct-mapped by pid: (pid, probe table + 1, traced).
    pub verdicts: Vec<(u32, u32, bool)>,
    pub input: Vec<u8>,
    /// Whether events are written as lines, and the epoch ms of CLOCK_MONOTONIC 0 for their times.
    pub lines_on: bool,
    pub epoch_offset_ms: f64,
    pub lines: Lines,
    pub scratch: Vec<u32>,
    pub bytes: Vec<u8>,
    pub mailbox: [f64; MB_SIZE],
}

pub const VERDICTS: usize = 1024;

static mut CORE: Option<Core> = None;

/// The instance's one state.
pub fn core() -> &'static mut Core {
    // One thread: the host calls one export at a time.
    unsafe {
        CORE.get_or_insert_with(|| Core {
            live: Live::new(),
            stacks: StackCache::new(),
            probes: Vec::new(),
            verdicts: vec![(0, 0, false); VERDICTS],
            input: Vec::new(),
            lines_on: false,
            epoch_offset_ms: 0.0,
            lines: Lines::new(),
            scratch: Vec::new(),
            bytes: Vec::new(),
            mailbox: [0.0; MB_SIZE],
        })
    }
}

impl Core {
    /// Applies the ring records in input[start, end) (each an 8-byte ring header and its payload,
    /// 8-aligned), up to one that needs the host.
    pub fn run(&mut self, start: usize, end: usize) -> u32 {
        let mut at = start;
        while at + RING_HEADER <= end {
            let hdr = Record::u32_at(&self.input, at);
            let len = (hdr & RING_LEN) as usize;
            let next = at + ((len + RING_HEADER + 7) & !7);
            if hdr & RING_DISCARD == 0 {
                let status = self.apply(at + RING_HEADER, len.min(end - at - RING_HEADER));
                if status != DONE {
                    self.mailbox[MB_CURSOR] = at as f64;
                    self.mailbox[MB_NEXT] = next as f64;
                    return self.stop(status);
                }
            }
            at = next;
        }
        self.mailbox[MB_CURSOR] = at as f64;
        self.mailbox[MB_NEXT] = at as f64;
        self.stop(DONE)
    }

    pub fn stop(&mut self, status: u32) -> u32 {
        self.mailbox[MB_OUT] = self.lines.out.as_ptr() as usize as f64;
        self.mailbox[MB_OUT_LEN] = self.lines.out.len() as f64;
        status
    }

    fn apply(&mut self, p: usize, len: usize) -> u32 {
        let rec = match Record::read(&self.input, p, len) {
            Some(r) => r,
            None => return RECORD,
        };
        if self.lines_on && self.lines.out.len() >= FLUSH_AT {
            return FLUSH;
        }
        let probe = match self.probes.get(rec.probe as usize) {
            Some(Some(probe)) => *probe,
            _ => return PROBE,
        };
        if probe.kind != if rec.is_create() { PROBE_CREATE } else { PROBE_EXIT } {
            return RECORD;
        }
        // Every process is judged by the host before its records count (it may be left out).
        let (pid, table, traced) = self.verdicts[rec.pid as usize % VERDICTS];
        if pid != rec.pid || table != probe.table + 1 {
            self.mailbox[MB_ASK_PID] = rec.pid as f64;
            return PID;
        }
        if !traced {
            return DONE;
        }
        if rec.is_create() {
            self.created(&rec, probe, p)
        } else {
            self.exited(&rec, probe)
        }
    }

    /// The millisecond (epoch) of a record's line.
    fn ms(&self, rec: &Record) -> f64 {
        // As the host computes it, in doubles: the same operations give the same millisecond.
        (self.epoch_offset_ms + rec.time_ns as f64 / 1e6).floor()
    }

    /// What a line lacks, asked of the host through the mailbox; DONE if nothing.
    pub fn ask(&mut self, ms: f64, slot: u32, id: u32, pid: u32) -> u32 {
        match self.lines.missing(ms, slot, id, pid) {
            None => DONE,
            Some(Missing::Heads) => {
                self.mailbox[MB_ASK_MS] = ms;
                HEADS
            }
            Some(Missing::Attrs(slot, id)) => {
                self.mailbox[MB_ASK_SLOT] = slot as f64;
                self.mailbox[MB_ASK_STACK] = id as f64;
                ATTRS
            }
            Some(Missing::End(pid)) => {
                self.mailbox[MB_ASK_PID] = pid as f64;
                END
            }
        }
    }

    fn created(&mut self, rec: &Record, probe: Probe, p: usize) -> u32 {
        if rec.nframes == 0 {
            return RECORD;
        }
        let (bias, pcs) = rec.stack(&self.input, p, probe.addr);
        let (id, slot) = match self.stacks.find(probe.table, bias, pcs) {
            Some(found) => found,
            None => return STACK,
        };
        if self.lines_on {
            let missing = self.ask(self.ms(rec), slot, id, rec.pid);
            if missing != DONE {
                return missing;
            }
        }
        match self.live.create(rec.pid, rec.goid, id, rec.time_ns as f64, true) {
            Created::NeedAgg => {
                self.mailbox[MB_ASK_PID] = rec.pid as f64;
                self.mailbox[MB_ASK_STACK] = id as f64;
                AGG
            }
            Created::Repeat => DONE,
            Created::New => {
                if self.lines_on {
                    self.lines.created(rec.goid, slot, rec.pid, rec.flags & record::TRUNCATED != 0);
                }
                DONE
            }
        }
    }

    fn exited(&mut self, rec: &Record, probe: Probe) -> u32 {
        if self.lines_on {
            let missing = self.ask(self.ms(rec), probe.exit_slot, probe.exit_id, rec.pid);
            if missing != DONE {
                return missing;
            }
        }
        let created = self.live.exit(rec.pid, rec.goid, rec.time_ns as f64);
        if self.lines_on && created != live::REPEAT {
            let lifetime = self.live.last_lifetime_ns;
            self.lines.exited(rec.goid, probe.exit_slot, rec.pid, created as u64, lifetime as i64);
        }
        DONE
    }

    /// Caches the stack of the creation record at the cursor as the host's `id` in `slot`.
    pub fn learn(&mut self, id: u32, slot: u32) {
        let at = self.mailbox[MB_CURSOR] as usize;
        let len = (Record::u32_at(&self.input, at) & RING_LEN) as usize;
        let p = at + RING_HEADER;
        let rec = match Record::read(&self.input, p, len) {
            Some(r) if r.nframes > 0 => r,
            _ => return,
        };
        if let Some(Some(probe)) = self.probes.get(rec.probe as usize) {
            let (bias, pcs) = rec.stack(&self.input, p, probe.addr);
            self.stacks.learn(probe.table, bias, pcs, id, slot);
        }
    }

    pub fn counts(&mut self) {
        let l = &self.live;
        self.mailbox[MB_CREATED] = l.created;
        self.mailbox[MB_EXITED] = l.exited;
        self.mailbox[MB_PREEXISTING] = l.preexisting;
        self.mailbox[MB_LIVE] = l.live as f64;
        self.mailbox[MB_LIFETIME] = l.last_lifetime_ns;
        self.mailbox[MB_SLOTS] = l.slots() as f64;
        self.mailbox[MB_SLAB_BYTES] = l.slab_bytes() as f64;
        let arrays = [
            l.slots_at(),
            l.agg_live.as_ptr() as u32,
            l.agg_created.as_ptr() as u32,
            l.site_live.as_ptr() as u32,
            l.site_created.as_ptr() as u32,
            l.site_exited.as_ptr() as u32,
            l.site_lifetime_ns.as_ptr() as u32,
            l.site_buckets.as_ptr() as u32,
        ];
        for (i, p) in arrays.iter().enumerate() {
            self.mailbox[MB_ARRAYS + i] = *p as f64;
        }
    }
}

