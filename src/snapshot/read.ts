/**
 * Reads every goroutine of a running Go process from outside, without stopping it: the runtime's
 * list of gs (allgptr/allglen), each g's header, and each parked goroutine's stack, with
 * process_vm_readv, many ranges per call. The program keeps running meanwhile, so a g's header is
 * read again after its stack: a goroutine that moved (status, saved pc/sp) or whose stack does not
 * walk cleanly is read again, and one that never holds still is reported without a stack rather than
 * with a torn one. A goroutine that has not run since the process's last reading is not read again
 * (settled.ts says how that is known).
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { monotonicNs } from "../bpf/native.ts";
import type { GoRelease } from "../target/goruntime.ts";
import type { FrameFacts, TargetImage } from "../target/wasm.ts";
import { locateAllgs } from "./allgs.ts";
import { formatArgs } from "./args.ts";
import { type CreatedBy, type Frame, type Goroutine, Status, STATUS_SCAN } from "./goroutine.ts";
import { type RuntimeLayout, runtimeLayout } from "./layout.ts";
import { gather, GatherPlan, ProcessGone, ProcessMemory, type ReadRequest, Scratch } from "./memory.ts";
import { type Known, Settled } from "./settled.ts";
import { type StackCopy, Walk, type WalkStart } from "./unwind.ts";
import { processState } from "../target/procfs.ts";

/**
 * Goroutines read per round: bounds gmon's memory whatever the process holds, and how long a reading
 * holds up gmon's other work (the ring's drain runs between rounds).
 */
const CHUNK = 1024;
/** How long a reading works before it lets gmon's other work run. */
const YIELD_EVERY_MS = 10;
/**
 * Bytes of stack read at first, from the saved sp up to at most the stack's top: the kernel's cost is
 * per page touched, and the used part of a parked stack (sp to the top) is mostly a page or two. A
 * deeper one is read again, longer.
 */
const FIRST_STACK_BYTES = 8192;
/**
 * Stacks' used parts (from the saved sp up) this close are read as one range: the kernel's cost per
 * range (~1 us here) is that of copying ~1 KB, and the gap between two neighbouring 2 KB stacks' used
 * parts is mostly more. Reading stacks in address order is what saves (page walks): ~40% here.
 */
const STACK_GAP = 512;
/** Stacks larger than this are not read (Go's own limit is 1 GB; no real stack comes near). */
const MAX_STACK_BYTES = 256 << 20;
/** Rounds of re-reading goroutines that moved while being read. */
const RETRIES = 4;
/** Sudogs followed per goroutine (a select parks on one per case). */
const MAX_SUDOGS = 16;
/** More gs than this in allgs means the two globals were misread. */
const MAX_GS = 50_000_000;

/** gStatusStrings, by status (Go 1.19-1.27; 7 and 8 are unused). */
const STATUS_NAMES = [
  "idle",
  "runnable",
  "running",
  "syscall",
  "waiting",
  "",
  "dead",
  "",
  "copystack",
  "preempted",
  "leaked",
  "waiting for cgo callback",
];

/** What a reading includes beyond where each goroutine is. */
export interface ReadOptions {
  /** Each frame's arguments, as Go's dump prints them (costs a string per frame). */
  args?: boolean;
}

/** Every goroutine of one process at one moment (over the few milliseconds reading takes). */
export interface Snapshot {
  pid: number;
  /** CLOCK_MONOTONIC at the start and end of the reading. */
  startNs: number;
  endNs: number;
  /** In the runtime's order (allgs), as Go's own dump lists them. */
  goroutines: Goroutine[];
  /** Goroutines that moved on every re-read: reported without a stack. */
  unsettled: number;
  /** System calls made and bytes read. */
  calls: number;
  bytes: number;
}

/** A g's header fields, as read. */
interface Header {
  gp: number;
  goid: number;
  status: number;
  scan: boolean;
  stackLo: number;
  stackHi: number;
  start: WalkStart;
  waitsince: number;
  waitreason: number;
  lockedm: number;
  waiting: number;
  parentGoid: number;
  gopc: number;
  startpc: number;
}

/** Reads goroutines of processes running one executable; caches what it learns of the code. */
export class SnapshotReader {
  readonly layout: RuntimeLayout;
  readonly #image: TargetImage;
  readonly #allgs: { allglen: number; allgptr: number };
  readonly #facts = new Map<number, FrameFacts | null>();
  readonly #walk = new Walk();
  readonly #creators = new Map<number, CreatedBy | null>();
  /** Stacks seen without arguments, by hash of their pcs: shared by the goroutines stopped there. */
  readonly #stacks = new Map<number, SharedStack[]>();
  /** Bytes of each g read: up to the last field gmon needs, not the whole g. */
  readonly #headerBytes: number;
  /** Bytes of each g read again after its stack: up to the last field that moves when it runs. */
  readonly #recheckBytes: number;
  /** Whether this reader reads each frame's arguments; the other kind of reading goes to #sibling. */
  readonly #withArgs: boolean;
  #sibling: SnapshotReader | null = null;
  readonly #release: GoRelease;
  readonly #lines = new Map<number, Frame[]>();
  /** Where a round's headers and stacks are read: reused, as a round's bytes are done with by its end. */
  readonly #scratch = new Scratch(Uint8Array);
  #waitReasons: readonly string[] | null;
  readonly #waitReasonSym: { addr: number; size: number } | null;
  /** What was read of goroutines that have not run since: their stacks are not read again. */
  readonly #settled: Settled;

  /** Throws a one-line error when the target's runtime layout or goroutine list can't be found. */
  constructor(image: TargetImage, release: GoRelease, withArgs = false) {
    this.#image = image;
    this.#release = release;
    this.#withArgs = withArgs;
    this.layout = runtimeLayout(image, release);
    const g = this.layout.g;
    this.#headerBytes = Math.max(...Object.values(g).filter((v): v is number => v !== null)) + 8;
    // waitsince too: zeroed whenever the goroutine runs, it proves (once a GC has set it) that it did not.
    const moving = [
      g.atomicstatus,
      g.goid,
      g.waitsince,
      g.schedSp,
      g.schedPc,
      g.syscallsp,
      g.syscallpc,
      g.stackHi,
    ];
    this.#recheckBytes = Math.max(...moving) + 8;
    this.#settled = new Settled(g);
    this.#allgs = locateAllgs(image);
    this.#waitReasonSym = image.symbol("runtime.waitReasonStrings");
    this.#waitReasons = this.#waitReasonSym === null ? this.layout.waitReasons : null;
    if (this.#waitReasons === null && this.#waitReasonSym === null) {
      throw new Error(`no wait reason strings for ${release.text}: neither a symbol table nor gmon's table`);
    }
  }

  /**
   * Reads every live goroutine of process `pid`, whose executable is loaded at `bias`. Between rounds
   * it yields to the event loop, so that a big process's reading never holds up gmon's other work.
   */
  async read(pid: number, bias: number, opts: ReadOptions = {}): Promise<Snapshot> {
    const goroutines: Goroutine[] = [];
    const s = await this.stream(pid, bias, opts, (some) => {
      for (const g of some) goroutines.push(g);
    });
    return { ...s, goroutines };
  }

  /**
   * {@link SnapshotReader.read}, handing the goroutines to `each` a round at a time, in the runtime's
   * order, rather than all at the end: what is done with them (a dump's text) is done while they are
   * young, and nothing need hold them all.
   */
  async stream(
    pid: number,
    bias: number,
    opts: ReadOptions,
    each: (goroutines: Goroutine[]) => void,
  ): Promise<Omit<Snapshot, "goroutines">> {
    // Readings with and without arguments are made by two readers, each keeping what it learns: two
    // readings of either kind may be under way at once (a dump requested while the endpoint reads).
    if ((opts.args === true) !== this.#withArgs) {
      this.#sibling ??= new SnapshotReader(this.#image, this.#release, !this.#withArgs);
      return this.#sibling.stream(pid, bias, opts, each);
    }
    const mem = new ProcessMemory(pid);
    const startNs = monotonicNs();
    const state = processState(pid);
    if (state === null) throw new ProcessGone(pid);
    const known = this.#settled.of(pid, state.startTime);
    const reasons = this.#reasons(mem, bias);
    const n = this.#allgPointers(mem, bias, known).length;
    let unsettled = 0;
    let lastYield = performance.now();
    for (let i = 0; i < n; i += CHUNK) {
      // Let gmon's timers (the ring's drain) run every few milliseconds of this work.
      if (performance.now() - lastYield >= YIELD_EVERY_MS) {
        // setImmediate rather than a zero timeout: due timers and I/O run all the same, but a zero
        // timeout idles ~2.5 ms here, every few ms of a big reading.
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
      const chunk = { known, from: i, n: Math.min(CHUNK, n - i) };
      const goroutines: Goroutine[] = [];
      const fresh: ReadGoroutine[] = [];
      unsettled += this.#readChunk(mem, chunk, bias, reasons, goroutines, fresh);
      this.#symbolizeAll(fresh);
      each(goroutines);
    }
    return { pid, startNs, endNs: monotonicNs(), unsettled, calls: mem.calls, bytes: mem.bytesRead };
  }

  /** allgs: read allglen, then allgptr (the runtime stores them the other way round), then the array. */
  #allgPointers(mem: ProcessMemory, bias: number, known: Known): Float64Array {
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const n = u64(mem.read(this.#allgs.allglen + bias, 8));
      const ptr = u64(mem.read(this.#allgs.allgptr + bias, 8));
      if (n === null || ptr === null) throw new Error(`process ${mem.pid}: cannot read the goroutine list`);
      if (n === 0) return known.allgs(new Uint32Array(0));
      if (n > MAX_GS || ptr === 0) throw new Error(`process ${mem.pid}: the goroutine list reads as garbage`);
      const arr = mem.read(ptr, n * 8);
      // The array only grows by copying: a moved pointer means the read raced a growth.
      if (arr === null || u64(mem.read(this.#allgs.allgptr + bias, 8)) !== ptr) continue;
      return known.allgs(new Uint32Array(arr.buffer, arr.byteOffset, n * 2));
    }
    throw new Error(`process ${mem.pid}: the goroutine list kept changing while being read`);
  }

  /** The wait reason strings: the process's own table when the binary names it, else gmon's. */
  #reasons(mem: ProcessMemory, bias: number): readonly string[] {
    if (this.#waitReasons !== null) return this.#waitReasons;
    const sym = this.#waitReasonSym!;
    const headers = mem.read(sym.addr + bias, sym.size);
    if (headers === null) throw new Error(`process ${mem.pid}: cannot read runtime.waitReasonStrings`);
    const view = new DataView(headers.buffer);
    const reqs: ReadRequest[] = [];
    let total = 0;
    for (let off = 0; off + 16 <= sym.size; off += 16) {
      const len = Math.min(wordAt(view, off + 8), 256);
      reqs.push({ addr: wordAt(view, off), len, at: total });
      total += len;
    }
    const bytes = new Uint8Array(total);
    const ok = mem.readMany(reqs, bytes);
    const decoder = new TextDecoder();
    const out = reqs.map((r, i) => ok[i] ? decoder.decode(bytes.subarray(r.at, r.at + r.len)) : "?");
    // The strings never change: read them once per executable.
    this.#waitReasons = out;
    return out;
  }

  /**
   * The goroutines at positions [from, from + n) of allgs, in order, onto `out` (those read anew onto
   * `fresh` too, to be symbolized): their headers, then the stacks of the parked ones that have run
   * since the last reading, then their headers again; moved ones are retried. Returns how many never
   * held still.
   */
  #readChunk(
    mem: ProcessMemory,
    chunk: { known: Known; from: number; n: number },
    bias: number,
    reasons: readonly string[],
    out: Goroutine[],
    fresh: ReadGoroutine[],
  ): number {
    const { known, from } = chunk;
    const gps = known.gps.subarray(from, from + chunk.n);
    // Goroutines by position in `gps`; `pending` holds the positions still to read.
    const got = new Array<Goroutine | null>(chunk.n).fill(null);
    let { pending, headers } = this.#unread(mem, chunk, got);
    for (let attempt = 0; attempt <= RETRIES && pending.length > 0; attempt++) {
      if (attempt > 0) headers = this.#headers(mem, pending.map((k) => gps[k]));
      const walks = this.#walks(mem, headers, bias);
      const unmoved = this.#unmoved(mem, headers);
      const moved: number[] = [];
      for (let i = 0; i < headers.length; i++) {
        const h = headers[i];
        if (h === null) continue;
        const walked = walks[i];
        if (!unmoved[i] || (walked !== null && "why" in walked)) {
          moved.push(pending[i]);
          continue;
        }
        const r = this.#goroutine(h, walked, bias, reasons);
        got[pending[i]] = r.g;
        fresh.push(r);
        // Its header was noted as first read: only then is it known unchanged since. Readings with
        // arguments (dumps) keep nothing: their goroutines are done with at once.
        if (attempt === 0 && walked !== null && !this.#withArgs) known.keep(from + pending[i], r.g);
      }
      pending = moved;
    }
    // Never a torn stack: what would not hold still is shown as it is now, without its stack.
    if (pending.length > 0) {
      this.#headers(mem, pending.map((k) => gps[k])).forEach((h, i) => {
        if (h === null) return;
        const r = this.#goroutine(h, null, bias, reasons);
        got[pending[i]] = r.g;
        fresh.push(r);
      });
    }
    for (const g of got) if (g !== null) out.push(g);
    return pending.length;
  }

  /**
   * Reads the headers of a chunk's gs: those that have not run since the last reading go into `got` as
   * then; the others' positions and headers are returned, to be read further.
   */
  #unread(
    mem: ProcessMemory,
    chunk: { known: Known; from: number; n: number },
    got: (Goroutine | null)[],
  ): { pending: number[]; headers: (Header | null)[] } {
    const { known, from } = chunk;
    const plan = known.plan(from, chunk.n, CHUNK, this.#headerBytes);
    const bytes = plan.read(mem, this.#scratch);
    const view = new DataView(bytes.buffer);
    const words = new Uint32Array(bytes.buffer, 0, bytes.length >> 2);
    const pending: number[] = [];
    const headers: (Header | null)[] = [];
    for (let k = 0; k < chunk.n; k++) {
      const at = plan.at[k];
      if (at < 0) continue;
      const kept = this.#withArgs ? undefined : known.get(from + k, words, at >> 2);
      if (kept !== undefined) {
        got[k] = kept;
        continue;
      }
      const h = this.#decode(view, at, known.gps[from + k]);
      if (h === null) continue;
      if (!this.#withArgs) known.note(from + k, words, at >> 2);
      pending.push(k);
      headers.push(h);
    }
    return { pending, headers };
  }

  /** The header of each g (its fields up to the last one gmon reads); null for a dead or unreadable one. */
  #headers(mem: ProcessMemory, gps: number[]): (Header | null)[] {
    const { bytes, at } = gather(mem, gps, this.#headerBytes, this.#scratch);
    const view = new DataView(bytes.buffer);
    return gps.map((gp, i) => (at[i] >= 0 ? this.#decode(view, at[i], gp) : null));
  }

  /**
   * Whether each g still is where its header said (status, goid, saved pc and sp, stack): only the
   * fields that change when a goroutine runs are read again.
   */
  #unmoved(mem: ProcessMemory, headers: (Header | null)[]): boolean[] {
    const o = this.layout.g;
    const { bytes, at: where } = gather(
      mem,
      headers.map((h) => h?.gp ?? 0),
      this.#recheckBytes,
      this.#scratch,
    );
    const view = new DataView(bytes.buffer);
    return headers.map((h, i) => {
      if (h === null || where[i] < 0) return false;
      const at = where[i];
      const raw = view.getUint32(at + o.atomicstatus, true) & ~STATUS_SCAN;
      const syscallsp = wordAt(view, at + o.syscallsp);
      const sp = syscallsp !== 0 ? syscallsp : wordAt(view, at + o.schedSp);
      const pc = wordAt(view, at + (syscallsp !== 0 ? o.syscallpc : o.schedPc));
      return raw === h.status && wordAt(view, at + o.goid) === h.goid && sp === h.start.sp &&
        pc === h.start.pc && wordAt(view, at + o.stackHi) === h.stackHi &&
        wordAt(view, at + o.waitsince) === h.waitsince;
    });
  }

  #decode(view: DataView, at: number, gp: number): Header | null {
    const o = this.layout.g;
    const raw = view.getUint32(at + o.atomicstatus, true);
    const status = raw & ~STATUS_SCAN;
    if (status === Status.dead || status === Status.deadextra || status === Status.idle) return null;
    const syscallsp = wordAt(view, at + o.syscallsp);
    return {
      gp,
      goid: wordAt(view, at + o.goid),
      status,
      scan: (raw & STATUS_SCAN) !== 0,
      stackLo: wordAt(view, at + o.stackLo),
      stackHi: wordAt(view, at + o.stackHi),
      // Go's unwinder: a goroutine in (or leaving) a system call is walked from where it entered it.
      start: syscallsp !== 0
        ? { pc: wordAt(view, at + o.syscallpc), sp: syscallsp, syscall: true }
        : { pc: wordAt(view, at + o.schedPc), sp: wordAt(view, at + o.schedSp), syscall: false },
      waitsince: wordAt(view, at + o.waitsince),
      waitreason: view.getUint8(at + o.waitreason),
      lockedm: wordAt(view, at + o.lockedm),
      waiting: wordAt(view, at + o.waiting),
      parentGoid: o.parentGoid === null ? 0 : wordAt(view, at + o.parentGoid),
      gopc: wordAt(view, at + o.gopc),
      startpc: wordAt(view, at + o.startpc),
    };
  }

  /**
   * The stack walk of each goroutine that has a stack to read (not running on a thread): physical
   * frames with their arguments printed, why it must be read again, or null for a running one.
   */
  #walks(mem: ProcessMemory, headers: (Header | null)[], bias: number): (Walked | Unsettled | null)[] {
    const out = new Array<Walked | Unsettled | null>(headers.length).fill(null);
    // The first read of every stack, as parallel arrays: no object per goroutine.
    const sps = new Float64Array(headers.length);
    const lens = new Float64Array(headers.length);
    const who = new Int32Array(headers.length);
    let n = 0;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      if (h === null || !hasStack(h)) continue;
      const sp = h.start.sp;
      if (sp < h.stackLo || sp > h.stackHi || h.stackHi - h.stackLo > MAX_STACK_BYTES) {
        out[i] = { why: "saved stack pointer outside the stack" };
        continue;
      }
      // Printing arguments reads the callers' frames above each frame: the whole used stack then.
      sps[n] = sp;
      lens[n] = this.#withArgs ? h.stackHi - sp : Math.min(FIRST_STACK_BYTES, h.stackHi - sp);
      who[n++] = i;
    }
    // In address order, neighbours closer than STACK_GAP as one range. Each stack read is walked (and a
    // longer one's bytes copied) before the scratch is reused.
    const plan = new GatherPlan(sps.subarray(0, n), lens.subarray(0, n), STACK_GAP);
    const buf = plan.read(mem, this.#scratch);
    // One object for every first read: a walk keeps nothing of it.
    const stack: StackCopy = { base: 0, view: new DataView(buf.buffer), off: 0, len: 0, hi: 0 };
    let longer: Longer[] = [];
    for (let j = 0; j < n; j++) {
      const h = headers[who[j]]!;
      if (plan.at[j] < 0) {
        out[who[j]] = { why: "stack not readable" };
        continue;
      }
      stack.base = h.start.sp;
      stack.off = plan.at[j];
      stack.len = lens[j];
      stack.hi = h.stackHi;
      this.#walkOne(stack, h, who[j], bias, out, longer);
    }
    // Deeper stacks than the first read: only what is missing is read, from where the last read ended.
    while (longer.length > 0) {
      let total = 0;
      const reqs = longer.map(({ h, have, len }): ReadRequest => {
        const r = { addr: h.start.sp + have.length, len: len - have.length, at: total };
        total += r.len;
        return r;
      });
      const buf = this.#scratch.take(total);
      const ok = mem.readMany(reqs, buf);
      const next: Longer[] = [];
      longer.forEach((x, j) => {
        if (!ok[j]) {
          out[x.i] = { why: "stack not readable" };
          return;
        }
        const bytes = concat(x.have, buf.subarray(reqs[j].at, reqs[j].at + reqs[j].len));
        const stack = {
          base: x.h.start.sp,
          view: new DataView(bytes.buffer),
          off: 0,
          len: bytes.length,
          hi: x.h.stackHi,
        };
        this.#walkOne(stack, x.h, x.i, bias, out, next);
      });
      longer = next;
    }
    return out;
  }

  /** Walks one stack copy: its frames or why not into `out[i]`, or onto `longer` to be read further. */
  #walkOne(
    stack: StackCopy,
    h: Header,
    i: number,
    bias: number,
    out: (Walked | Unsettled | null)[],
    longer: Longer[],
  ): void {
    const problem = this.#walk.run(stack, h.start, bias, this.#factsAt);
    if (problem === null) out[i] = this.#walked(this.#walk, stack);
    else if (problem.kind === "torn") out[i] = { why: problem.why };
    else {
      const len = Math.min(problem.need + FIRST_STACK_BYTES, h.stackHi - h.start.sp);
      // Copied out: the scratch the copy is in is read into again.
      const have = new Uint8Array(stack.view.buffer, stack.off, stack.len).slice();
      longer.push({ h, i, have, len });
    }
  }

  /**
   * What a finished walk keeps: the stack shared by every goroutine stopped at the same pcs (made
   * once), and with arguments, this goroutine's argument text for each of its physical frames.
   */
  #walked(w: Walk, stack: StackCopy): Walked {
    const shared = this.#intern(w);
    if (!this.#withArgs) return shared.walked;
    const args = new Array<string>(w.n);
    for (let i = 0; i < w.n; i++) {
      const facts = w.facts[i];
      args[i] = facts.args === null ? "" : formatArgs(facts, w.argp[i], stack);
    }
    return { shared, args };
  }

  readonly #factsAt = (pc: number): FrameFacts | null => {
    let f = this.#facts.get(pc);
    if (f === undefined) {
      f = this.#image.frameFacts([[pc, pc > 0 ? pc - 1 : pc]])[0];
      this.#facts.set(pc, f);
    }
    return f;
  };

  #goroutine(h: Header, walked: Walked | null, bias: number, reasons: readonly string[]): ReadGoroutine {
    const start = this.#factsAt(h.startpc - bias);
    const reason = reasons[h.waitreason] ?? "";
    const waiting = h.status === Status.waiting || h.status === Status.leaked;
    const gopc = h.gopc === 0 ? 0 : h.gopc - bias;
    const g: Goroutine = {
      goid: h.goid,
      status: h.status,
      scan: h.scan,
      state: waiting && h.waitreason !== 0 ? reason : (STATUS_NAMES[h.status] || "???"),
      waitReason: reason,
      waitSinceNs: h.waitsince,
      lockedToThread: h.lockedm !== 0,
      gopc,
      startpc: h.startpc - bias,
      startFunc: start?.name ?? "?",
      parentGoid: h.parentGoid,
      createdBy: this.#createdBy(gopc),
      frames: null,
      args: null,
      pcs: NO_PCS,
      system: false,
      sudog: waiting ? h.waiting : 0,
      waitingOn: NO_CHANNELS,
    };
    if (walked === null) return { g, shared: null };
    g.pcs = walked.shared.pcs;
    g.args = walked.args;
    return { g, shared: walked.shared };
  }

  /** The shared stack for the walk's frames (by their pcs), made on first sight. */
  #intern(w: Walk): SharedStack {
    let h = 0x811c9dc5 ^ w.n;
    for (let i = 0; i < w.n; i++) {
      h = Math.imul(h ^ (w.pc[i] % 0x1_0000_0000), 0x01000193) ^ Math.floor(w.pc[i] / 0x1_0000_0000);
    }
    let bucket = this.#stacks.get(h);
    if (bucket !== undefined) {
      outer: for (const s of bucket) {
        if (s.rawPcs.length !== w.n) continue;
        for (let i = 0; i < w.n; i++) if (s.rawPcs[i] !== w.pc[i]) continue outer;
        return s;
      }
    }
    const frames = Array.from({ length: w.n }, (_, i) => w.frame(i));
    if (this.#stacks.size >= MAX_SHARED_STACKS) this.#stacks.clear();
    if (bucket === undefined) {
      bucket = [];
      this.#stacks.set(h, bucket);
    }
    const s: SharedStack = {
      rawPcs: frames.map((f) => f.pc),
      pcs: frames.map((f) => f.symPc),
      physical: frames.map((f) => ({
        symPc: f.symPc,
        func: f.facts.name,
        offset: f.pc > f.facts.entry ? f.pc - f.facts.entry : 0,
      })),
      frames: null,
      walked: null!,
    };
    s.walked = { shared: s, args: null };
    bucket.push(s);
    return s;
  }

  /**
   * Fills in the channels each of `goroutines` (of process `pid`) waits on: g.waiting's sudogs (one per
   * select case), linked by waitlink, each naming its channel, read list position by list position,
   * every goroutine at once. Done on demand (leak candidates, a page of /goroutines): most readings
   * never need it.
   */
  channels(pid: number, goroutines: readonly Goroutine[]): void {
    const o = this.layout.sudog;
    const size = Math.max(o.c, o.waitlink) + 8;
    const mem = new ProcessMemory(pid);
    let at = goroutines.filter((g) => g.sudog !== 0 && g.waitingOn === NO_CHANNELS).map((g) => ({
      g,
      sudog: g.sudog,
    }));
    for (let depth = 0; depth < MAX_SUDOGS && at.length > 0; depth++) {
      const { bytes, at: where } = gather(mem, at.map((x) => x.sudog), size);
      const view = new DataView(bytes.buffer);
      const next: typeof at = [];
      at.forEach((x, i) => {
        if (where[i] < 0) return;
        const c = wordAt(view, where[i] + o.c);
        if (c !== 0 && !x.g.waitingOn.includes(c)) {
          if (x.g.waitingOn === NO_CHANNELS) x.g.waitingOn = [];
          x.g.waitingOn.push(c);
        }
        const link = wordAt(view, where[i] + o.waitlink);
        if (link !== 0) next.push({ g: x.g, sudog: link });
      });
      at = next;
    }
  }

  /** `created by`: the go statement's function (physical) and the line of gopc - 1, as Go prints it. */
  #createdBy(gopc: number): CreatedBy | null {
    if (gopc === 0) return null;
    let hit = this.#creators.get(gopc);
    if (hit === undefined) {
      hit = this.#creator(gopc);
      this.#creators.set(gopc, hit);
    }
    return hit;
  }

  #creator(gopc: number): CreatedBy | null {
    const f = this.#factsAt(gopc);
    if (f === null) return null;
    const at = gopc > f.entry ? gopc - 1 : gopc;
    const inner = this.#framesAt([at]).get(at)?.[0];
    return { func: f.name, file: inner?.file ?? "?", line: inner?.line ?? 0, offset: gopc - f.entry };
  }

  /**
   * Logical frames (inlined calls expanded) for each physical frame, from one symbolization batch:
   * goroutines at the same pcs share one frame list.
   */
  #symbolizeAll(reads: ReadGoroutine[]): void {
    const pcs = new Set<number>();
    for (const r of reads) {
      if (r.shared?.frames === null) { for (const f of r.shared.physical) pcs.add(f.symPc); }
    }
    const lines = this.#framesAt([...pcs]);
    const expand = (physical: SharedStack["physical"]) =>
      physical.flatMap((phys, k) => {
        const logical = lines.get(phys.symPc) ?? [];
        return logical.map((l, i): Frame =>
          i < logical.length - 1
            ? { ...l, inlined: true, physical: k }
            : { ...l, func: phys.func, offset: phys.offset, physical: k }
        );
      });
    for (const { g, shared } of reads) {
      if (shared !== null) g.frames = shared.frames ??= expand(shared.physical);
      g.system = isSystem(g);
    }
  }

  /** Symbolized frames per file address, cached across snapshots. */
  #framesAt(pcs: number[]): Map<number, Frame[]> {
    const missing = pcs.filter((pc) => !this.#lines.has(pc));
    if (missing.length > 0) {
      const found = this.#image.symbolize(missing);
      missing.forEach((pc, i) => {
        this.#lines.set(
          pc,
          (found[i] ?? []).map((f) => ({
            func: f.func,
            file: f.file,
            line: f.line,
            inlined: false,
            wrapper: f.wrapper === true,
            offset: 0,
            physical: 0,
          })),
        );
      });
    }
    return new Map(pcs.map((pc) => [pc, this.#lines.get(pc)!]));
  }
}

/** A walked stack: shared by the goroutines stopped at its pcs, and this one's argument texts if read. */
interface Walked {
  shared: SharedStack;
  args: string[] | null;
}

/** Goroutines stopped at the same pcs share one stack. */
interface SharedStack {
  /** What a walk that ends in this stack keeps: made once, for every goroutine stopped there. */
  walked: Walked;
  rawPcs: number[];
  pcs: number[];
  physical: { symPc: number; func: string; offset: number }[];
  /** The logical frames, once symbolized (kept across readings). */
  frames: Frame[] | null;
}

/** Shared stacks kept across readings; past this many they are dropped and made again as seen. */
const MAX_SHARED_STACKS = 50_000;
const NO_PCS: number[] = Object.freeze([]) as unknown as number[];
/** A goroutine not (yet) known to wait on a channel; replaced, never pushed to. */
const NO_CHANNELS: number[] = Object.freeze([]) as unknown as number[];

/** A goroutine as read, its stack's physical frames not yet expanded into logical ones. */
interface ReadGoroutine {
  g: Goroutine;
  shared: SharedStack | null;
}

/** A stack that can't be trusted as read: read the goroutine again. */
interface Unsettled {
  why: string;
}

/** Started in these, a goroutine is the program's even though the runtime started it. */
const USER_STARTS: ReadonlySet<string> = new Set([
  "runtime.main",
  "runtime.corostart",
  "runtime.handleAsyncEvent",
]);
/** Started in these, it is the program's only while running the program's finalizers or cleanups. */
const CALLBACK_STARTS: ReadonlySet<string> = new Set([
  "runtime.runfinq",
  "runtime.runFinalizers",
  "runtime.runCleanups",
]);

/**
 * runtime.isSystemGoroutine: started in a runtime function, but for the main goroutine and for the
 * finalizer and cleanup goroutines while they run the program's code (which gmon sees on their stack
 * rather than in the runtime's flags).
 */
function isSystem(g: Goroutine): boolean {
  if (USER_STARTS.has(g.startFunc)) return false;
  if (CALLBACK_STARTS.has(g.startFunc)) {
    return !(g.frames ?? []).some((f) => !f.func.startsWith("runtime."));
  }
  return g.startFunc.startsWith("runtime.");
}

/** A goroutine has a stack to read unless it runs on a thread (Go prints those without one). */
function hasStack(h: Header): boolean {
  return !(h.status === Status.running && !h.start.syscall);
}

/** A stack to read further: `len` bytes from its saved sp, of which `have` are read. */
interface Longer {
  h: Header;
  i: number;
  have: Uint8Array;
  len: number;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function wordAt(view: DataView, off: number): number {
  return view.getUint32(off + 4, true) * 0x1_0000_0000 + view.getUint32(off, true);
}

function u64(bytes: Uint8Array | null): number | null {
  return bytes === null ? null : wordAt(new DataView(bytes.buffer, bytes.byteOffset, 8), 0);
}
