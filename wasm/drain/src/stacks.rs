//! Which stack a creation record's PCs are: a cache in front of the host's stack tables, which
//! symbolize and number stacks. Keyed by the probe's table, the process's load bias and the PCs as the
//! record has them; set-associative by hash, the least recently found of a set replaced (the stacks
//! that create goroutines often are few, and a miss only costs a trip to the host, which knows every
//! stack).

const SETS: usize = 1024;
const WAYS: usize = 4;

struct Entry {
    hash: u64,
    table: u32,
    bias: u64,
    pcs: Vec<u64>,
    id: u32,
    slot: u32,
    /// When it was last found (a count of lookups), for replacing the least recent of a set.
    stamp: u64,
    /// Found since the host last asked (see [`StackCache::take_used`]).
    used: bool,
}

pub struct StackCache {
    entries: Vec<Option<Entry>>,
    clock: u64,
    /// The entry found last: goroutines come in bursts from one stack, and comparing its PCs costs
    /// less than hashing them.
    last: usize,
}

#[inline]
fn pc(pcs: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(pcs[i * 8..i * 8 + 8].try_into().unwrap())
}

/// A hash of a stack's key: its PCs folded by rotate and xor in two independent chains (a multiply
/// per PC was most of a lookup, one chain's latency most of the rest), then mixed once.
#[inline]
fn hash(table: u32, bias: u64, pcs: &[u8]) -> u64 {
    let (mut a, mut b) = ((table as u64) << 32 ^ bias, pcs.len() as u64);
    let n = pcs.len() / 8;
    for i in (0..n & !1).step_by(2) {
        a = a.rotate_left(7) ^ pc(pcs, i);
        b = b.rotate_left(7) ^ pc(pcs, i + 1);
    }
    if n & 1 == 1 {
        a = a.rotate_left(7) ^ pc(pcs, n - 1);
    }
    let h = (a ^ b.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 32)
}

#[inline]
fn same(pcs: &[u64], bytes: &[u8]) -> bool {
    pcs.len() * 8 == bytes.len() && pcs.iter().enumerate().all(|(i, &p)| p == pc(bytes, i))
}

impl StackCache {
    pub fn new() -> StackCache {
        StackCache { entries: (0..SETS * WAYS).map(|_| None).collect(), clock: 0, last: 0 }
    }

    fn set(h: u64) -> std::ops::Range<usize> {
        let s = (h as usize & (SETS - 1)) * WAYS;
        s..s + WAYS
    }

    /// The (stack id, slot) of a key, if cached.
    pub fn find(&mut self, table: u32, bias: u64, pcs: &[u8]) -> Option<(u32, u32)> {
        self.clock += 1;
        let clock = self.clock;
        let matches = |e: &Entry| e.table == table && e.bias == bias && same(&e.pcs, pcs);
        if let Some(e) = &mut self.entries[self.last] {
            if matches(e) {
                e.used = true;
                e.stamp = clock;
                return Some((e.id, e.slot));
            }
        }
        let h = hash(table, bias, pcs);
        for i in Self::set(h) {
            if let Some(e) = &mut self.entries[i] {
                if e.hash == h && matches(e) {
                    e.used = true;
                    e.stamp = clock;
                    self.last = i;
                    return Some((e.id, e.slot));
                }
            }
        }
        None
    }

    /// Caches a key as the host's stack `id` (in its slot `slot`), in place of its set's least
    /// recently found.
    pub fn learn(&mut self, table: u32, bias: u64, pcs: &[u8], id: u32, slot: u32) {
        let h = hash(table, bias, pcs);
        let pcs = (0..pcs.len() / 8).map(|i| pc(pcs, i)).collect();
        self.clock += 1;
        let stamp = self.clock;
        let set = &mut self.entries[Self::set(h)];
        let at = (0..WAYS).min_by_key(|&w| set[w].as_ref().map_or(0, |e| e.stamp)).unwrap_or(0);
        set[at] = Some(Entry { hash: h, table, bias, pcs, id, slot, stamp, used: true });
        self.last = Self::set(h).start + at;
    }

    /// Drops the entries of stacks the host evicted (`ids` sorted).
    pub fn forget(&mut self, ids: &[u32]) {
        for e in self.entries.iter_mut() {
            if matches!(e, Some(x) if ids.binary_search(&x.id).is_ok()) {
                *e = None;
            }
        }
    }

    /// Drops every entry (the host's tables were replaced).
    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }

    /// The ids of entries found since the last call, into `out`: stacks in use, which the host's
    /// eviction must keep although it did not see them used.
    pub fn take_used(&mut self, out: &mut Vec<u32>) {
        out.clear();
        for e in self.entries.iter_mut().flatten() {
            if e.used {
                e.used = false;
                out.push(e.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(pcs: &[u64]) -> Vec<u8> {
        pcs.iter().flat_map(|p| p.to_le_bytes()).collect()
    }

    #[test]
    fn finds_what_it_learned_and_forgets() {
        let mut c = StackCache::new();
        let k = bytes(&[0x401000, 0x402000]);
        assert_eq!(c.find(1, 0, &k), None);
        c.learn(1, 0, &k, 9, 3);
        assert_eq!(c.find(1, 0, &k), Some((9, 3)));
        // Another table, bias or PCs is another stack.
        assert_eq!(c.find(2, 0, &k), None);
        assert_eq!(c.find(1, 4096, &k), None);
        assert_eq!(c.find(1, 0, &bytes(&[0x401000, 0x402001])), None);
        let mut used = Vec::new();
        c.take_used(&mut used);
        assert_eq!(used, vec![9]);
        c.take_used(&mut used);
        assert!(used.is_empty());
        c.forget(&[2, 9]);
        assert_eq!(c.find(1, 0, &k), None);
    }

    #[test]
    fn stacks_of_one_set_stay_till_more_than_its_ways_come() {
        let mut c = StackCache::new();
        // Stacks that fall in one set of the cache.
        let set = |k: &[u8]| hash(1, 0, k) as usize & (SETS - 1);
        let keys: Vec<Vec<u8>> =
            (0..).map(|pc| bytes(&[pc])).filter(|k| set(k) == 0).take(WAYS + 1).collect();
        for (i, k) in keys.iter().enumerate().take(WAYS) {
            c.learn(1, 0, k, i as u32 + 1, 0);
        }
        for (i, k) in keys.iter().enumerate().take(WAYS) {
            assert_eq!(c.find(1, 0, k), Some((i as u32 + 1, 0)));
        }
        // The first was found least recently: the new one takes its place.
        c.learn(1, 0, &keys[WAYS], 99, 0);
        assert_eq!(c.find(1, 0, &keys[0]), None);
        assert_eq!(c.find(1, 0, &keys[WAYS]), Some((99, 0)));
        assert_eq!(c.find(1, 0, &keys[1]), Some((2, 0)));
    }
}
