//! The live goroutines and what they add up to: one slot per live goroutine in flat arrays, found by
//! (pid, goid) through an open-addressing index, and counts per aggregate (a creation stack in one
//! process) and per site (a creation site in one process). The host numbers aggregates and sites and
//! keeps what they are (pid, stack id, site name); this keeps their counts, which every event moves.

/// Lifetime histogram buckets per site, +Inf included.
pub const NB: usize = 10;

/// Exited goids remembered for telling a repeated exit report apart (goexit1 can restart after a
/// preemption, and the repeat comes right after): a set that forgets without bookkeeping, one slot
/// per goid modulo this (mixed with the pid), so a process's last this many exits at least.
const RECENT: usize = 1 << 16;

/// What [`Live::create`] did.
#[derive(PartialEq, Eq, Debug)]
pub enum Created {
    New,
    /// Already live: a repeated report.
    Repeat,
    /// The (pid, stack) pair has no aggregate yet: the host must number it first.
    NeedAgg,
}

/// What [`Live::exit`] found: the created stack id, or one of these.
pub const PREEXISTING: f64 = 0.0;
pub const REPEAT: f64 = -1.0;

/// A live goroutine, or a free slot: what an exit reads is on one or two cache lines, not one per
/// field (a burst's table is far bigger than the caches). The host reads the slots as laid out here
/// (src/state/live.ts).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Slot {
    goid: u64,
    /// When it was created (ns, the records' clock), or found if adopted.
    born: f64,
    pid: u32,
    /// >= 0 live: its aggregate, with [`ADOPTED`] if it was alive before gmon attached; < 0 free:
    /// -2 - this the next free slot (-1 ends).
    agg: i32,
}

/// The bit of [`Slot::agg`] that says adopted; aggregates are numbered below it.
pub const ADOPTED: i32 = 1 << 30;

#[derive(Default)]
pub struct Live {
    slots: Vec<Slot>,
    free: i32,
    /// Slot + 1 by hash, 0 empty; load at most 1/2.
    index: Vec<u32>,
    shift: u32,
    pub live: u32,

    /// Aggregate + 1 by hash of (pid, stack id), 0 empty; load at most 1/2.
    agg_index: Vec<u32>,
    agg_shift: u32,
    agg_used: u32,
    pub agg_pid: Vec<u32>,
    pub agg_stack: Vec<u32>,
    pub agg_site: Vec<u32>,
    pub agg_live: Vec<i32>,
    pub agg_created: Vec<f64>,
    last_pid: u32,
    last_stack: u32,
    last_agg: i32,

    pub site_live: Vec<i32>,
    pub site_created: Vec<f64>,
    pub site_exited: Vec<f64>,
    pub site_lifetime_ns: Vec<f64>,
    pub site_buckets: Vec<f64>,
    pub bucket_ns: [f64; NB - 1],

    recent_goid: Vec<u64>,
    recent_pid: Vec<u32>,

    pub created: f64,
    pub exited: f64,
    pub preexisting: f64,
    pub last_lifetime_ns: f64,
}

/// Where (pid, `key`) starts in an index of 2^(32 - shift) entries: both indexes hash the same way.
fn spread(pid: u32, key: u32, shift: u32) -> usize {
    ((key ^ pid.wrapping_mul(0x85eb_ca6b)).wrapping_mul(0x9e37_79b1) >> shift) as usize
}

fn home(pid: u32, goid: u64, shift: u32) -> usize {
    spread(pid, (goid as u32) ^ ((goid >> 32) as u32), shift)
}

fn agg_home(pid: u32, stack: u32, shift: u32) -> usize {
    spread(pid, stack, shift)
}

/// In an open-addressing index with linear probing (entry + 1, 0 empty), from position `home`: where
/// the entry `same` picks is, or the empty position where it would go.
#[inline]
fn find_in(index: &[u32], home: usize, same: impl Fn(usize) -> bool) -> usize {
    let mask = index.len() - 1;
    let mut i = home;
    loop {
        let e = index[i];
        if e == 0 || same(e as usize - 1) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

/// Empties position `i` of such an index, shifting the later entries of its cluster back where their
/// home (`home_of` an entry) allows: no tombstones.
#[inline]
fn shift_out(index: &mut [u32], mut i: usize, home_of: impl Fn(usize) -> usize) {
    let mask = index.len() - 1;
    let mut j = i;
    loop {
        j = (j + 1) & mask;
        let e = index[j];
        if e == 0 {
            break;
        }
        let k = home_of(e as usize - 1);
        if (j.wrapping_sub(k) & mask) >= (j.wrapping_sub(i) & mask) {
            index[i] = e;
            i = j;
        }
    }
    index[i] = 0;
}

impl Live {
    pub fn new() -> Live {
        Live {
            free: -1,
            index: vec![0; 2048],
            shift: 21,
            agg_index: vec![0; 64],
            agg_shift: 26,
            last_agg: -1,
            recent_goid: vec![u64::MAX; RECENT],
            recent_pid: vec![0; RECENT],
            ..Default::default()
        }
    }

    /// Records a creation (`seen`: gmon saw it created; else adopted, alive before it attached).
    pub fn create(&mut self, pid: u32, goid: u64, stack: u32, time_ns: f64, seen: bool) -> Created {
        let pos = self.probe(pid, goid);
        if self.index[pos] != 0 {
            return Created::Repeat;
        }
        let a = self.find_agg(pid, stack);
        if a < 0 {
            return Created::NeedAgg;
        }
        let slot = self.alloc();
        let agg = if seen { a } else { a | ADOPTED };
        self.slots[slot] = Slot { goid, born: time_ns, pid, agg };
        self.index[pos] = slot as u32 + 1;
        let (a, s) = (a as usize, self.agg_site[a as usize] as usize);
        self.agg_live[a] += 1;
        self.site_live[s] += 1;
        if seen {
            self.agg_created[a] += 1.0;
            self.site_created[s] += 1.0;
            self.created += 1.0;
        }
        self.live += 1;
        if self.live as usize * 2 > self.index.len() {
            self.rehash(self.index.len() * 2);
        }
        Created::New
    }

    /// Records an exit: the created stack id (setting `last_lifetime_ns`), PREEXISTING or REPEAT.
    pub fn exit(&mut self, pid: u32, goid: u64, time_ns: f64) -> f64 {
        let pos = self.probe(pid, goid);
        let entry = self.index[pos];
        if entry == 0 {
            if self.recently_exited(pid, goid) {
                return REPEAT;
            }
            self.preexisting += 1.0;
            return PREEXISTING;
        }
        let slot = entry as usize - 1;
        let Slot { born, agg, .. } = self.slots[slot];
        let a = (agg & !ADOPTED) as usize;
        let lifetime = (time_ns - born).max(0.0);
        let adopted = agg & ADOPTED != 0;
        self.remove_at(pos);
        self.release(slot);
        self.remember(pid, goid);
        self.live -= 1;
        let s = self.agg_site[a] as usize;
        self.agg_live[a] -= 1;
        self.site_live[s] -= 1;
        if adopted {
            self.preexisting += 1.0;
            return PREEXISTING;
        }
        self.site_exited[s] += 1.0;
        self.site_lifetime_ns[s] += lifetime;
        let mut b = 0;
        while b < NB - 1 && lifetime > self.bucket_ns[b] {
            b += 1;
        }
        self.site_buckets[s * NB + b] += 1.0;
        self.exited += 1.0;
        self.last_lifetime_ns = lifetime;
        self.agg_stack[a] as f64
    }

    fn recent_slot(pid: u32, goid: u64) -> usize {
        // goids are handed out in sequence: their low bits, moved by the pid, spread them.
        (goid as usize ^ pid.wrapping_mul(0x9e37_79b1) as usize) & (RECENT - 1)
    }

    pub fn recently_exited(&self, pid: u32, goid: u64) -> bool {
        let i = Self::recent_slot(pid, goid);
        self.recent_goid[i] == goid && self.recent_pid[i] == pid
    }

    fn remember(&mut self, pid: u32, goid: u64) {
        let i = Self::recent_slot(pid, goid);
        self.recent_goid[i] = goid;
        self.recent_pid[i] = pid;
    }

    /// Drops every live goroutine of `pid`; returns how many there were. Its aggregates stay (the host
    /// removes them).
    pub fn drop_pid(&mut self, pid: u32) -> u32 {
        let mut n = 0;
        for slot in 0..self.slots.len() {
            let Slot { goid, pid: p, agg, .. } = self.slots[slot];
            if agg < 0 || p != pid {
                continue;
            }
            let a = (agg & !ADOPTED) as usize;
            self.agg_live[a] -= 1;
            self.site_live[self.agg_site[a] as usize] -= 1;
            let pos = self.probe(pid, goid);
            self.remove_at(pos);
            self.release(slot);
            self.live -= 1;
            n += 1;
        }
        n
    }

    /// Bytes of the slots and their index (what grows with the live goroutines).
    pub fn slab_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.index.len() * 4
    }

    /// Slots ever used: a live one's `agg` is >= 0.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Where the slots are, for the host to read.
    pub fn slots_at(&self) -> u32 {
        self.slots.as_ptr() as u32
    }

    // Aggregates.

    #[inline]
    pub fn find_agg(&mut self, pid: u32, stack: u32) -> i32 {
        if pid == self.last_pid && stack == self.last_stack && self.last_agg >= 0 {
            return self.last_agg;
        }
        let e = self.agg_index[self.agg_probe(pid, stack)];
        let a = e as i32 - 1;
        if a >= 0 {
            self.last_pid = pid;
            self.last_stack = stack;
            self.last_agg = a;
        }
        a
    }

    /// Aggregate `a` is (pid, stack) at site `site` (numbers the host chose), its counts zero.
    pub fn set_agg(&mut self, a: u32, pid: u32, stack: u32, site: u32) {
        assert!(a < ADOPTED as u32, "aggregate {a} past the slots' numbering");
        let a = a as usize;
        if a >= self.agg_pid.len() {
            let n = (a + 1).max(self.agg_pid.len() * 2);
            self.agg_pid.resize(n, 0);
            self.agg_stack.resize(n, 0);
            self.agg_site.resize(n, 0);
            self.agg_live.resize(n, 0);
            self.agg_created.resize(n, 0.0);
        }
        if site as usize >= self.site_live.len() {
            let n = (site as usize + 1).max(self.site_live.len() * 2);
            self.site_live.resize(n, 0);
            self.site_created.resize(n, 0.0);
            self.site_exited.resize(n, 0.0);
            self.site_lifetime_ns.resize(n, 0.0);
            self.site_buckets.resize(n * NB, 0.0);
        }
        self.agg_pid[a] = pid;
        self.agg_stack[a] = stack;
        self.agg_site[a] = site;
        self.agg_live[a] = 0;
        self.agg_created[a] = 0.0;
        let pos = self.agg_probe(pid, stack);
        self.agg_index[pos] = a as u32 + 1;
        self.agg_used += 1;
        if self.agg_used as usize * 2 > self.agg_index.len() {
            self.agg_rehash();
        }
    }

    /// Zeroes a site's counts (the host numbers a new one there).
    pub fn clear_site(&mut self, s: u32) {
        let s = s as usize;
        if s < self.site_live.len() {
            self.site_live[s] = 0;
            self.site_created[s] = 0.0;
            self.site_exited[s] = 0.0;
            self.site_lifetime_ns[s] = 0.0;
            self.site_buckets[s * NB..s * NB + NB].fill(0.0);
        }
    }

    /// Forgets the aggregate of (pid, stack): its number is free for the host to give again.
    pub fn remove_agg(&mut self, pid: u32, stack: u32) {
        let pos = self.agg_probe(pid, stack);
        if self.agg_index[pos] == 0 {
            return;
        }
        self.last_agg = -1;
        self.agg_used -= 1;
        let (pids, stacks, shift) = (&self.agg_pid, &self.agg_stack, self.agg_shift);
        shift_out(&mut self.agg_index, pos, |a| agg_home(pids[a], stacks[a], shift));
    }

    fn agg_probe(&self, pid: u32, stack: u32) -> usize {
        let home = agg_home(pid, stack, self.agg_shift);
        find_in(&self.agg_index, home, |a| self.agg_stack[a] == stack && self.agg_pid[a] == pid)
    }

    fn agg_rehash(&mut self) {
        let old = std::mem::replace(&mut self.agg_index, vec![0; 0]);
        self.agg_index = vec![0; old.len() * 2];
        self.agg_shift -= 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            let a = e as usize - 1;
            let pos = self.agg_probe(self.agg_pid[a], self.agg_stack[a]);
            self.agg_index[pos] = e;
        }
    }

    // The slots' index.

    #[inline]
    fn probe(&self, pid: u32, goid: u64) -> usize {
        let home = home(pid, goid, self.shift);
        find_in(&self.index, home, |s| self.slots[s].goid == goid && self.slots[s].pid == pid)
    }

    fn remove_at(&mut self, i: usize) {
        let (slots, shift) = (&self.slots, self.shift);
        shift_out(&mut self.index, i, |s| home(slots[s].pid, slots[s].goid, shift));
    }

    fn rehash(&mut self, size: usize) {
        self.index = vec![0; size];
        self.shift = 32 - size.trailing_zeros();
        for slot in 0..self.slots.len() {
            let Slot { goid, pid, agg, .. } = self.slots[slot];
            if agg >= 0 {
                let pos = self.probe(pid, goid);
                self.index[pos] = slot as u32 + 1;
            }
        }
    }

    fn alloc(&mut self) -> usize {
        if self.free >= 0 {
            let slot = self.free as usize;
            self.free = -2 - self.slots[slot].agg;
            return slot;
        }
        self.slots.push(Slot::default());
        self.slots.len() - 1
    }

    fn release(&mut self, slot: usize) {
        self.slots[slot].agg = -2 - self.free;
        self.free = slot as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_agg(live: &mut Live, pid: u32, stack: u32) {
        live.set_agg(0, pid, stack, 0);
    }

    #[test]
    fn slots_as_the_host_reads_them() {
        // src/state/live.ts reads goid at 0, born at 8, pid at 16, agg at 20, 24 bytes a slot.
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        let mut l = Live::new();
        with_agg(&mut l, 7, 5);
        l.create(7, 0x1_0000_0003, 5, 2.5, false);
        // SAFETY: a slot was just made: the first 24 bytes are its.
        let s = unsafe { std::slice::from_raw_parts(l.slots.as_ptr() as *const u8, 24) };
        assert_eq!(u64::from_le_bytes(s[0..8].try_into().unwrap()), 0x1_0000_0003);
        assert_eq!(f64::from_le_bytes(s[8..16].try_into().unwrap()), 2.5);
        assert_eq!(u32::from_le_bytes(s[16..20].try_into().unwrap()), 7);
        assert_eq!(i32::from_le_bytes(s[20..24].try_into().unwrap()), ADOPTED);
        assert_eq!(l.exit(7, 0x1_0000_0003, 9.0), PREEXISTING);
    }

    #[test]
    fn create_exit_counts_and_repeats() {
        let mut l = Live::new();
        assert_eq!(l.create(7, 1, 5, 0.0, true), Created::NeedAgg);
        with_agg(&mut l, 7, 5);
        assert_eq!(l.create(7, 1, 5, 10.0, true), Created::New);
        assert_eq!(l.create(7, 1, 5, 10.0, true), Created::Repeat);
        assert_eq!(l.exit(7, 1, 30.0), 5.0);
        assert_eq!(l.last_lifetime_ns, 20.0);
        assert_eq!(l.exit(7, 1, 40.0), REPEAT);
        assert_eq!(l.exit(7, 2, 40.0), PREEXISTING);
        assert_eq!((l.created, l.exited, l.preexisting, l.live), (1.0, 1.0, 1.0, 0));
    }

    #[test]
    fn many_goroutines_grow_and_shrink() {
        let mut l = Live::new();
        with_agg(&mut l, 1, 1);
        for g in 0..100_000u64 {
            assert_eq!(l.create(1, g << 20, 1, 0.0, true), Created::New);
        }
        for g in (0..100_000u64).step_by(2) {
            assert_eq!(l.exit(1, g << 20, 1.0), 1.0);
        }
        assert_eq!(l.live, 50_000);
        assert_eq!(l.agg_live[0], 50_000);
        for g in (1..100_000u64).step_by(2) {
            assert_eq!(l.exit(1, g << 20, 1.0), 1.0);
        }
        assert_eq!(l.live, 0);
        assert_eq!(l.drop_pid(1), 0);
    }

    #[test]
    fn aggregates_removed_and_renumbered() {
        let mut l = Live::new();
        for s in 0..1000 {
            l.set_agg(s, 3, s + 1, 0);
        }
        for s in (0..1000).step_by(3) {
            l.remove_agg(3, s + 1);
        }
        for s in 0..1000u32 {
            assert_eq!(l.find_agg(3, s + 1), if s % 3 == 0 { -1 } else { s as i32 });
        }
    }
}
