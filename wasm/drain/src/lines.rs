//! The event lines, assembled as bytes: a line is pieces the host encoded once (the millisecond's
//! head up to goroutine_id's value, a stack's attributes, a process's end) and numbers written here
//! (the goid, the created stack's id, the lifetime). The host's encoding (slog's text or JSON) made
//! every piece; this knows only their order, and Go's time.Duration text for lifetimes.

/// Bytes of stacks' attributes kept: each is a whole stack's text (~2-4 KB at 30 frames). Beyond
/// it all are dropped, and the stacks in use are asked for again: a program of endless distinct
/// stacks never holds more than this.
const ATTR_BYTES: usize = 4 << 20;

/// Pid ends kept, direct-mapped by pid.
const ENDS: usize = 256;

/// What a line needs that the host has not given yet.
pub enum Missing {
    /// The heads of this millisecond.
    Heads,
    /// The attributes of the stack in this slot (with this id).
    Attrs(u32, u32),
    /// The end of this process's lines.
    End(u32),
}

pub struct Lines {
    pub out: Vec<u8>,
    /// Whether lifetimes are JSON (integer ns) rather than text (Go's duration).
    pub json: bool,
    /// The millisecond of `heads` (NaN: none); heads of creation and exit lines.
    ms: f64,
    heads: [Vec<u8>; 2],
    /// Attributes by stack slot: (stack id, bytes).
    attrs: Vec<Option<(u32, Vec<u8>)>>,
    attr_bytes: usize,
    ends: Vec<Option<(u32, Vec<u8>)>>,
    /// ` stack_truncated=true`, ` created_stack_id=`, ` lifetime=` (or JSON's).
    pub truncated: Vec<u8>,
    pub created_key: Vec<u8>,
    pub lifetime_key: Vec<u8>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            out: Vec::with_capacity(1 << 20),
            json: false,
            ms: f64::NAN,
            heads: [Vec::new(), Vec::new()],
            attrs: Vec::new(),
            attr_bytes: 0,
            ends: (0..ENDS).map(|_| None).collect(),
            truncated: Vec::new(),
            created_key: Vec::new(),
            lifetime_key: Vec::new(),
        }
    }

    /// What a line of the stack in `slot` (id `id`), process `pid`, millisecond `ms` lacks.
    pub fn missing(&self, ms: f64, slot: u32, id: u32, pid: u32) -> Option<Missing> {
        if ms != self.ms {
            return Some(Missing::Heads);
        }
        if !matches!(self.attrs.get(slot as usize), Some(Some((i, _))) if *i == id) {
            return Some(Missing::Attrs(slot, id));
        }
        if !matches!(&self.ends[pid as usize % ENDS], Some((p, _)) if *p == pid) {
            return Some(Missing::End(pid));
        }
        None
    }

    pub fn set_heads(&mut self, ms: f64, created: &[u8], exited: &[u8]) {
        self.ms = ms;
        self.heads = [created.to_vec(), exited.to_vec()];
    }

    pub fn set_attrs(&mut self, slot: u32, id: u32, bytes: &[u8]) {
        if self.attr_bytes + bytes.len() > ATTR_BYTES {
            self.attrs.iter_mut().for_each(|a| *a = None);
            self.attr_bytes = 0;
        }
        let slot = slot as usize;
        if self.attrs.len() <= slot {
            self.attrs.resize_with(slot + 1, || None);
        }
        self.attr_bytes += bytes.len();
        self.attrs[slot] = Some((id, bytes.to_vec()));
    }

    pub fn set_end(&mut self, pid: u32, bytes: &[u8]) {
        self.ends[pid as usize % ENDS] = Some((pid, bytes.to_vec()));
    }

    pub fn forget_end(&mut self, pid: u32) {
        let e = &mut self.ends[pid as usize % ENDS];
        if matches!(e, Some((p, _)) if *p == pid) {
            *e = None;
        }
    }

    /// `head goid attrs [truncated] end` (what [`missing`](Lines::missing) says is there).
    pub fn created(&mut self, goid: u64, slot: u32, pid: u32, truncated: bool) {
        self.start(0, goid, slot);
        if truncated {
            put(&mut self.out, &self.truncated);
        }
        self.end(pid);
    }

    /// `head goid attrs [created_stack_id=C lifetime=D] end`; C is 0 for a goroutine not seen created.
    pub fn exited(&mut self, goid: u64, slot: u32, pid: u32, created: u64, lifetime_ns: i64) {
        self.start(1, goid, slot);
        if created > 0 {
            put(&mut self.out, &self.created_key);
            uint(&mut self.out, created);
            put(&mut self.out, &self.lifetime_key);
            if lifetime_ns < 0 {
                self.out.push(b'-');
            }
            if self.json {
                uint(&mut self.out, lifetime_ns.unsigned_abs());
            } else {
                duration(&mut self.out, lifetime_ns.unsigned_abs());
            }
        }
        self.end(pid);
    }

    fn start(&mut self, head: usize, goid: u64, slot: u32) {
        put(&mut self.out, &self.heads[head]);
        uint(&mut self.out, goid);
        if let Some(Some((_, attrs))) = self.attrs.get(slot as usize) {
            put(&mut self.out, attrs);
        }
    }

    fn end(&mut self, pid: u32) {
        if let Some((_, end)) = &self.ends[pid as usize % ENDS] {
            put(&mut self.out, end);
        }
    }
}

/// Appends `bytes`. Most pieces are short (numbers, keys, a line's end), and a memory.copy is a call
/// out of WebAssembly into the engine's memmove: up to 32 bytes are copied as overlapping 8-byte words.
#[inline]
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if !(8..=32).contains(&n) {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(n);
    // SAFETY: `out` has room for n more bytes, and each word read and written lies within the n.
    unsafe {
        let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr().add(out.len()));
        let word = |at: usize| {
            let w = std::ptr::read_unaligned(src.add(at) as *const u64);
            std::ptr::write_unaligned(dst.add(at) as *mut u64, w);
        };
        word(0);
        if n > 16 {
            word(8);
            word(n - 16);
        }
        word(n - 8);
        out.set_len(out.len() + n);
    }
}

/// "00" to "99".
const PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// `n` in decimal: its digits made from the last, two a step (in 32-bit arithmetic once below 2^32:
/// 64-bit division is slow in WebAssembly), then moved as three 8-byte words whatever their number
/// (a copy of a few bytes would be a call out to the engine's memmove).
pub fn uint(out: &mut Vec<u8>, n: u64) {
    // The digits end at 20; the words moved read up to 24 bytes past their start.
    let mut buf = [0u8; 44];
    let mut i = 20;
    let mut pair = |i: &mut usize, r: usize| {
        buf[*i - 1] = PAIRS[2 * r + 1];
        buf[*i - 2] = PAIRS[2 * r];
        *i -= 2;
    };
    let mut high = n;
    while high >= 1 << 32 {
        pair(&mut i, (high % 100) as usize);
        high /= 100;
    }
    let mut m = high as u32;
    while m >= 100 {
        pair(&mut i, (m % 100) as usize);
        m /= 100;
    }
    if m >= 10 {
        pair(&mut i, m as usize);
    } else {
        i -= 1;
        buf[i] = b'0' + m as u8;
    }
    out.reserve(24);
    // SAFETY: 24 bytes of room were reserved, buf[i..i + 24] lies within buf (i <= 19), and only the
    // 20 - i digits are counted in.
    unsafe {
        let (src, dst) = (buf.as_ptr().add(i), out.as_mut_ptr().add(out.len()));
        for w in 0..3 {
            let word = std::ptr::read_unaligned(src.add(8 * w) as *const u64);
            std::ptr::write_unaligned(dst.add(8 * w) as *mut u64, word);
        }
        out.set_len(out.len() + 20 - i);
    }
}

/// `.` and `prec` digits of `v` (below 10^prec), trailing zeros dropped; nothing for 0 (Go's fmtFrac).
fn frac(out: &mut Vec<u8>, mut v: u64, mut prec: usize) {
    if v == 0 {
        return;
    }
    while v % 10 == 0 {
        v /= 10;
        prec -= 1;
    }
    let mut digits = [b'0'; 10];
    for d in digits[..prec].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.push(b'.');
    out.extend_from_slice(&digits[..prec]);
}

/// Go's time.Duration.String() of a duration's magnitude (its sign is the caller's): `0s`, `999ns`,
/// `1.5µs`, `250ms`, `1.503s`, `1m30.5s`, `2h0m0s`.
pub fn duration(out: &mut Vec<u8>, ns: u64) {
    if ns == 0 {
        out.extend_from_slice(b"0s");
        return;
    }
    if ns < 1_000 {
        uint(out, ns);
        out.extend_from_slice(b"ns");
        return;
    }
    let (unit, prec, suffix): (u64, usize, &[u8]) = match ns {
        n if n < 1_000_000 => (1_000, 3, "µs".as_bytes()),
        n if n < 1_000_000_000 => (1_000_000, 6, b"ms"),
        _ => (1_000_000_000, 9, b"s"),
    };
    let whole = ns / unit;
    if unit < 1_000_000_000 {
        uint(out, whole);
    } else {
        let (hours, mins, secs) = (whole / 3600, whole / 60 % 60, whole % 60);
        if hours > 0 {
            uint(out, hours);
            out.push(b'h');
        }
        if whole >= 60 {
            uint(out, mins);
            out.push(b'm');
        }
        uint(out, secs);
    }
    frac(out, ns % unit, prec);
    out.extend_from_slice(suffix);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ns: u64) -> String {
        let mut out = Vec::new();
        duration(&mut out, ns);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers_in_decimal() {
        for n in [0, 7, 10, 99, 100, 12345, u32::MAX as u64, 1 << 32, 9_007_199_254_740_991, u64::MAX] {
            let mut out = Vec::new();
            uint(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn durations_as_go_writes_them() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (250_000_000, "250ms"),
            (1_503_000_000, "1.503s"),
            (60_000_000_000, "1m0s"),
            (90_500_000_000, "1m30.5s"),
            (7_200_000_000_000, "2h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (1 << 63, "2562047h47m16.854775808s"),
        ];
        for (ns, want) in cases {
            assert_eq!(d(ns), want, "{ns} ns");
        }
    }

    #[test]
    fn a_line_is_its_pieces_in_order() {
        let mut l = Lines::new();
        assert!(matches!(l.missing(5.0, 0, 9, 42), Some(Missing::Heads)));
        l.set_heads(5.0, b"C goroutine_id=", b"E goroutine_id=");
        assert!(matches!(l.missing(5.0, 0, 9, 42), Some(Missing::Attrs(0, 9))));
        l.set_attrs(0, 9, b" stack_id=9");
        assert!(matches!(l.missing(5.0, 0, 9, 42), Some(Missing::End(42))));
        l.set_end(42, b" pid=42\n");
        assert!(l.missing(5.0, 0, 9, 42).is_none());
        l.created_key = b" created_stack_id=".to_vec();
        l.lifetime_key = b" lifetime=".to_vec();
        l.truncated = b" stack_truncated=true".to_vec();
        l.created(17, 0, 42, true);
        l.exited(17, 0, 42, 9, 1_500);
        l.exited(18, 0, 42, 0, 0);
        l.exited(19, 0, 42, 9, -5);
        let want = "C goroutine_id=17 stack_id=9 stack_truncated=true pid=42\n\
                    E goroutine_id=17 stack_id=9 created_stack_id=9 lifetime=1.5µs pid=42\n\
                    E goroutine_id=18 stack_id=9 pid=42\n\
                    E goroutine_id=19 stack_id=9 created_stack_id=9 lifetime=-5ns pid=42\n";
        assert_eq!(String::from_utf8(l.out.clone()).unwrap(), want);
    }
}
