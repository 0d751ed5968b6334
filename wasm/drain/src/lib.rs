//! gmon's per-record loop, compiled to WebAssembly: ring records copied into this module's memory are
//! applied to the live goroutines here, with no call to the host per record. What needs the host (a
//! stack not yet cached, a process not yet judged, a record of another kind) stops the loop at that
//! record; the host does its part and runs the loop again. Event lines are written here too, into a
//! buffer the host empties after each run. One instance per tracer: its state is this module's
//! globals.

mod lines;
mod live;
mod record;
mod stacks;
mod state;

use crate::state::{core, Probe, DONE, MB_SCRATCH, VERDICTS};
use live::Created;

/// Where the mailbox is.
#[no_mangle]
pub extern "C" fn mailbox() -> u32 {
    core().mailbox.as_ptr() as u32
}

/// Room for `len` bytes of ring records; its address.
#[no_mangle]
pub extern "C" fn input(len: u32) -> u32 {
    let c = core();
    if c.input.len() < len as usize {
        c.input.resize(len as usize, 0);
    }
    c.input.as_ptr() as u32
}

/// Applies the records in input[start, end). Returns why it stopped (the mailbox says where).
#[no_mangle]
pub extern "C" fn run(start: u32, end: u32) -> u32 {
    let c = core();
    let end = (end as usize).min(c.input.len());
    c.run(start as usize, end)
}

/// Probe `index` is of `kind` (PROBE_*), its stacks in the host's table `table`, at file address
/// `addr` (a creation probe's first frame, less the load bias); an exit probe's lines show the stack
/// `exit_id` (in slot `exit_slot`).
#[no_mangle]
pub extern "C" fn set_probe(index: u32, kind: u32, table: u32, addr: f64, exit_slot: u32, exit_id: u32) {
    let c = core();
    if c.probes.len() <= index as usize {
        c.probes.resize(index as usize + 1, None);
    }
    c.probes[index as usize] = Some(Probe { kind, table, addr: addr as u64, exit_slot, exit_id });
}

/// Events are written as lines (`on`), lifetimes as JSON's integers (`json`) or Go's durations.
#[no_mangle]
pub extern "C" fn set_lines(on: u32, json: u32) {
    let c = core();
    c.lines_on = on != 0;
    c.lines.json = json != 0;
}

/// The epoch ms of CLOCK_MONOTONIC 0 (records' times are monotonic, lines' epoch).
#[no_mangle]
pub extern "C" fn set_epoch(epoch_offset_ms: f64) {
    core().epoch_offset_ms = epoch_offset_ms;
}

/// `v` made `n` zeroes long, for the host to write; its address.
fn room<T: Clone + Default>(v: &mut Vec<T>, n: u32) -> u32 {
    v.clear();
    v.resize(n as usize, T::default());
    v.as_ptr() as u32
}

/// Room for `n` bytes the host writes (pieces of lines); its address.
#[no_mangle]
pub extern "C" fn bytes(n: u32) -> u32 {
    room(&mut core().bytes, n)
}

/// The heads of millisecond `ms`: the bytes' first `created` are the creation lines', the rest the
/// exit lines'.
#[no_mangle]
pub extern "C" fn set_heads(ms: f64, created: u32) {
    let c = core();
    let (a, b) = c.bytes.split_at((created as usize).min(c.bytes.len()));
    c.lines.set_heads(ms, a, b);
}

/// The bytes are the attributes of stack `id` (in slot `slot`).
#[no_mangle]
pub extern "C" fn set_attrs(slot: u32, id: u32) {
    let c = core();
    c.lines.set_attrs(slot, id, &c.bytes);
}

/// The bytes end process `pid`'s lines.
#[no_mangle]
pub extern "C" fn set_end(pid: u32) {
    let c = core();
    c.lines.set_end(pid, &c.bytes);
}

#[no_mangle]
pub extern "C" fn forget_end(pid: u32) {
    core().lines.forget_end(pid);
}

/// The bytes are a fixed piece: 0 the truncated stack's attribute, 1 created_stack_id's key, 2
/// lifetime's.
#[no_mangle]
pub extern "C" fn set_piece(which: u32) {
    let c = core();
    let piece = c.bytes.clone();
    match which {
        0 => c.lines.truncated = piece,
        1 => c.lines.created_key = piece,
        _ => c.lines.lifetime_key = piece,
    }
}

/// Writes a creation's line; or, as [`run`] does, says what it lacks (and writes nothing).
#[no_mangle]
pub extern "C" fn line_created(ms: f64, goid: f64, slot: u32, id: u32, pid: u32, truncated: u32) -> u32 {
    let c = core();
    let missing = c.ask(ms, slot, id, pid);
    if missing == DONE {
        c.lines.created(goid as u64, slot, pid, truncated != 0);
    }
    c.stop(missing)
}

/// Writes an exit's line (`created`: the created stack id, 0 if not seen created; `lifetime` in ns,
/// truncated and clamped to int64 as Go's time.Duration would hold it); or says what it lacks.
#[no_mangle]
pub extern "C" fn line_exited(ms: f64, goid: f64, slot: u32, id: u32, pid: u32, created: f64, lifetime: f64) -> u32 {
    let c = core();
    let missing = c.ask(ms, slot, id, pid);
    if missing == DONE {
        c.lines.exited(goid as u64, slot, pid, created as u64, lifetime as i64);
    }
    c.stop(missing)
}

/// The host took the lines written so far.
#[no_mangle]
pub extern "C" fn clear_out() {
    let c = core();
    c.lines.out.clear();
    c.stop(DONE);
}

/// Forgets every probe (they may have changed since the last drain).
#[no_mangle]
pub extern "C" fn clear_probes() {
    core().probes.iter_mut().for_each(|p| *p = None);
}

/// Process `pid`'s records through table `table`'s probes count (`traced`) or not.
#[no_mangle]
pub extern "C" fn set_verdict(pid: u32, table: u32, traced: u32) {
    core().verdicts[pid as usize % VERDICTS] = (pid, table + 1, traced != 0);
}

/// Forgets every verdict (the host's processes changed).
#[no_mangle]
pub extern "C" fn clear_verdicts() {
    core().verdicts.iter_mut().for_each(|v| *v = (0, 0, false));
}

/// Caches the stack of the creation record at the cursor as the host's stack `id` (slot `slot`).
#[no_mangle]
pub extern "C" fn learn(id: u32, slot: u32) {
    core().learn(id, slot);
}

/// Room for `n` u32s the host writes (stack ids to forget); its address.
#[no_mangle]
pub extern "C" fn scratch(n: u32) -> u32 {
    room(&mut core().scratch, n)
}

/// Forgets cached stacks: the `n` ids in the scratch.
#[no_mangle]
pub extern "C" fn forget_stacks(n: u32) {
    let c = core();
    let mut ids = c.scratch[..(n as usize).min(c.scratch.len())].to_vec();
    ids.sort_unstable();
    c.stacks.forget(&ids);
}

/// Forgets every cached stack.
#[no_mangle]
pub extern "C" fn clear_stacks() {
    core().stacks.clear();
}

/// Ids of the stacks found in the cache since the last call, into the scratch (the mailbox says
/// where); how many.
#[no_mangle]
pub extern "C" fn take_used() -> u32 {
    let c = core();
    c.stacks.take_used(&mut c.scratch);
    c.mailbox[MB_SCRATCH] = c.scratch.as_ptr() as usize as f64;
    c.scratch.len() as u32
}

/// Records a creation: 0 new, 1 a repeat, 2 the (pid, stack) pair needs an aggregate first.
#[no_mangle]
pub extern "C" fn create(pid: u32, goid: f64, stack: u32, time_ns: f64, seen: u32) -> u32 {
    match core().live.create(pid, goid as u64, stack, time_ns, seen != 0) {
        Created::New => 0,
        Created::Repeat => 1,
        Created::NeedAgg => 2,
    }
}

/// Records an exit: the created stack id, 0 (alive before gmon attached) or -1 (a repeated report).
#[no_mangle]
pub extern "C" fn exit(pid: u32, goid: f64, time_ns: f64) -> f64 {
    core().live.exit(pid, goid as u64, time_ns)
}

#[no_mangle]
pub extern "C" fn recently_exited(pid: u32, goid: f64) -> u32 {
    u32::from(core().live.recently_exited(pid, goid as u64))
}

/// Drops process `pid`'s live goroutines; how many.
#[no_mangle]
pub extern "C" fn drop_pid(pid: u32) -> u32 {
    core().live.drop_pid(pid)
}

#[no_mangle]
pub extern "C" fn find_agg(pid: u32, stack: u32) -> i32 {
    core().live.find_agg(pid, stack)
}

#[no_mangle]
pub extern "C" fn set_agg(a: u32, pid: u32, stack: u32, site: u32) {
    core().live.set_agg(a, pid, stack, site);
}

#[no_mangle]
pub extern "C" fn remove_agg(pid: u32, stack: u32) {
    core().live.remove_agg(pid, stack);
}

#[no_mangle]
pub extern "C" fn clear_site(site: u32) {
    core().live.clear_site(site);
}

/// The lifetime histogram's upper bound `i` (ns).
#[no_mangle]
pub extern "C" fn set_bucket(i: u32, ns: f64) {
    if let Some(b) = core().live.bucket_ns.get_mut(i as usize) {
        *b = ns;
    }
}

/// Puts the counts and where the arrays are (they move as they grow) into the mailbox.
#[no_mangle]
pub extern "C" fn counts() {
    core().counts();
}

/// The record layout this was built for, for the host's test against bpf/gmon.h.
#[no_mangle]
pub extern "C" fn layout(i: u32) -> u32 {
    record::LAYOUT.get(i as usize).map_or(u32::MAX, |&v| v as u32)
}

/// The record loop's speed natively, for comparing with the module's in Deno (not a test: timing
/// is not asserted): `cargo test --release -- --ignored --nocapture speed`.
#[cfg(test)]
mod bench {
    use crate::state::{AGG, DONE, STACK};

    #[test]
    #[ignore]
    fn speed() {
        let n = 20000usize;
        let fr = 10usize;
        let mut buf = Vec::new();
        for g in 1..=n as u64 {
            let mut rec = vec![0u8; 8 + 32 + fr * 8];
            rec[0..4].copy_from_slice(&((32 + fr * 8) as u32).to_le_bytes());
            rec[8..12].copy_from_slice(&1u32.to_le_bytes());
            rec[12..16].copy_from_slice(&1234u32.to_le_bytes());
            rec[16..24].copy_from_slice(&g.to_le_bytes());
            rec[24..32].copy_from_slice(&(g * 1000).to_le_bytes());
            rec[32..36].copy_from_slice(&(fr as u32).to_le_bytes());
            for f in 0..fr {
                let pc: u64 = if f == 0 { 0x401000 } else { 0x402000 + f as u64 * 16 };
                rec[40 + f * 8..48 + f * 8].copy_from_slice(&pc.to_le_bytes());
            }
            buf.extend_from_slice(&rec);
            let mut ex = vec![0u8; 40];
            ex[0..4].copy_from_slice(&32u32.to_le_bytes());
            ex[8..12].copy_from_slice(&2u32.to_le_bytes());
            ex[12..16].copy_from_slice(&1234u32.to_le_bytes());
            ex[16..24].copy_from_slice(&g.to_le_bytes());
            ex[24..32].copy_from_slice(&(g * 1000 + 500).to_le_bytes());
            ex[36..40].copy_from_slice(&(1u32 << 8).to_le_bytes());
            buf.extend_from_slice(&ex);
        }
        let c = super::core();
        c.input = buf.clone();
        super::set_probe(0, 1, 1, 0x401000 as f64, 0, 0);
        super::set_probe(1, 2, 1, 0.0, 1, 8);
        super::set_verdict(1234, 1, 1);
        let end = buf.len() as u32;
        assert_eq!(super::run(0, end), STACK);
        super::learn(7, 0);
        assert_eq!(super::run(0, end), AGG);
        super::set_agg(0, 1234, 7, 0);
        let t = std::time::Instant::now();
        for _ in 0..100 {
            assert_eq!(super::run(0, end), DONE);
        }
        let ns = t.elapsed().as_nanos() as f64 / (100.0 * 2.0 * n as f64);
        println!("native: {:.1} ns/event", ns);
        // With lines: a 75-byte head, 10 frames' attributes, a pid's end.
        super::set_lines(1, 0);
        let head = b"time=2026-12-02T04:00:00.000Z level=INFO msg=runtime.newproc1 goroutine_id=";
        let attrs = b" stack_id=7 stack.0=\"main.f at /src/main.go:12\"".repeat(10);
        let lines = &mut c.lines;
        lines.set_attrs(0, 7, &attrs);
        lines.set_attrs(1, 8, b" stack_id=8 stack.0=\"runtime.goexit1 at /go/src/runtime/proc.go:4321\"");
        lines.set_end(1234, b" pid=1234\n");
        let t = std::time::Instant::now();
        for _ in 0..100 {
            let mut s = super::run(0, end);
            while s == super::state::FLUSH || s == super::state::HEADS {
                if s == super::state::HEADS {
                    c.lines.set_heads(c.mailbox[super::state::MB_ASK_MS], head, head);
                }
                super::clear_out();
                s = super::run(c.mailbox[super::state::MB_CURSOR] as u32, end);
            }
            assert_eq!(s, DONE);
            super::clear_out();
        }
        let ns = t.elapsed().as_nanos() as f64 / (100.0 * 2.0 * n as f64);
        println!("native with lines: {:.1} ns/event", ns);
    }
}
