/**
 * The drain's core: the WebAssembly module built from `wasm/drain/` (Rust), where the live goroutines'
 * table and counts are, and where ring records are applied to them without a call per record into
 * JavaScript (V8 compiles a JavaScript loop afresh in every burst, and boxes, checks and collects
 * where this runs as compiled). {@link LiveGoroutines} is its interface for the rest of gmon, the
 * record consumer (src/trace/records.ts) its driver. The mailbox's slots and the status codes mirror
 * `wasm/drain/src/lib.rs`.
 *
 * @module
 */
import drainWasm from "../../build/drain.wasm" with { type: "bytes" };

/** Why the core's run returned (lib.rs's constants): 0 done, else what it needs first. */
export const Status = {
  done: 0,
  record: 1,
  probe: 2,
  pid: 3,
  stack: 4,
  agg: 5,
  heads: 6,
  attrs: 7,
  end: 8,
  flush: 9,
} as const;

/** A probe's kind, as the core is told it (lib.rs's PROBE_*). */
export const ProbeKind = { other: 0, create: 1, exit: 2 } as const;

/** Mailbox slots (lib.rs's MB_*). */
const MB = {
  cursor: 0,
  next: 1,
  created: 2,
  exited: 3,
  preexisting: 4,
  live: 5,
  lifetime: 6,
  out: 7,
  outLen: 8,
  askPid: 9,
  askStack: 10,
  scratch: 11,
  slots: 12,
  slabBytes: 13,
  arrays: 14,
  askSlot: 26,
  askMs: 27,
} as const;

/** Where the core's arrays are, read after {@link DrainCore.counts}; byte addresses. */
export const Arrays = {
  /** The live goroutines' slots: see {@link Slot}. */
  slots: 0,
  aggLive: 1,
  aggCreated: 2,
  siteLive: 3,
  siteCreated: 4,
  siteExited: 5,
  siteLifetime: 6,
  siteBuckets: 7,
} as const;

/**
 * A slot of the core's live table (wasm/drain/src/live.rs, `Slot`): goid (u64) at 0, born (f64) at 8,
 * pid (u32) at 16, agg (i32) at 20: >= 0 live, its aggregate with {@link Slot.adopted} set if it was
 * alive before gmon attached; < 0 free.
 */
export const Slot = { bytes: 24, goid: 0, born: 8, pid: 16, agg: 20, adopted: 1 << 30 } as const;

interface Exports {
  memory: WebAssembly.Memory;
  mailbox(): number;
  input(len: number): number;
  run(start: number, end: number): number;
  set_probe(index: number, kind: number, table: number, addr: number, exitSlot: number, exitId: number): void;
  set_lines(on: number, json: number): void;
  set_epoch(epochOffsetMs: number): void;
  bytes(n: number): number;
  set_heads(ms: number, created: number): void;
  set_attrs(slot: number, id: number): void;
  set_end(pid: number): void;
  forget_end(pid: number): void;
  set_piece(which: number): void;
  line_created(ms: number, goid: number, slot: number, id: number, pid: number, truncated: number): number;
  line_exited(
    ms: number,
    goid: number,
    slot: number,
    id: number,
    pid: number,
    created: number,
    lifetime: number,
  ): number;
  clear_out(): void;
  clear_probes(): void;
  set_verdict(pid: number, table: number, traced: number): void;
  clear_verdicts(): void;
  learn(id: number, slot: number): void;
  scratch(n: number): number;
  forget_stacks(n: number): void;
  clear_stacks(): void;
  take_used(): number;
  create(pid: number, goid: number, stack: number, timeNs: number, seen: number): number;
  exit(pid: number, goid: number, timeNs: number): number;
  recently_exited(pid: number, goid: number): number;
  drop_pid(pid: number): number;
  find_agg(pid: number, stack: number): number;
  set_agg(a: number, pid: number, stack: number, site: number): void;
  remove_agg(pid: number, stack: number): void;
  clear_site(site: number): void;
  set_bucket(i: number, ns: number): void;
  counts(): void;
  layout(i: number): number;
}

let compiled: WebAssembly.Module | undefined;

/** One instance of the core: its memory and exports, and views of its memory kept current. */
export class DrainCore {
  readonly x: Exports;
  #buffer: ArrayBufferLike | null = null;
  #f64: Float64Array<ArrayBufferLike> = new Float64Array(0);
  #u8: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  readonly #mailbox: number;

  constructor() {
    compiled ??= new WebAssembly.Module(drainWasm as Uint8Array<ArrayBuffer>);
    this.x = new WebAssembly.Instance(compiled, {}).exports as unknown as Exports;
    this.#mailbox = this.x.mailbox() / 8;
  }

  /** The memory as f64s (views are remade when the memory grows: the old ones go empty). */
  get f64(): Float64Array<ArrayBufferLike> {
    if (this.x.memory.buffer !== this.#buffer) this.#views();
    return this.#f64;
  }

  get u8(): Uint8Array<ArrayBufferLike> {
    if (this.x.memory.buffer !== this.#buffer) this.#views();
    return this.#u8;
  }

  #views(): void {
    const b = this.x.memory.buffer;
    this.#buffer = b;
    this.#f64 = new Float64Array(b);
    this.#u8 = new Uint8Array(b);
  }

  /** Mailbox slot `i`. */
  mail(i: number): number {
    return this.f64[this.#mailbox + i];
  }

  get cursor(): number {
    return this.mail(MB.cursor);
  }

  get next(): number {
    return this.mail(MB.next);
  }

  get askPid(): number {
    return this.mail(MB.askPid);
  }

  get askStack(): number {
    return this.mail(MB.askStack);
  }

  get askSlot(): number {
    return this.mail(MB.askSlot);
  }

  get askMs(): number {
    return this.mail(MB.askMs);
  }

  /** The lines written and not taken yet: their byte address and length. */
  out(): { at: number; n: number } {
    return { at: this.mail(MB.out), n: this.mail(MB.outLen) };
  }

  /** Counts, and where the arrays are now: after this, {@link array} and {@link count} answer. */
  counts(): void {
    this.x.counts();
  }

  count(which: "created" | "exited" | "preexisting" | "live" | "lifetime" | "slots" | "slabBytes"): number {
    return this.mail(MB[which]);
  }

  /** The byte address of one of the core's arrays (valid until the next call that may grow it). */
  array(which: keyof typeof Arrays): number {
    return this.mail(MB.arrays + Arrays[which]);
  }

  /** Copies `ids` to the core's scratch. */
  putIds(ids: readonly number[]): void {
    const at = this.x.scratch(ids.length) / 4;
    const u32 = new Uint32Array(this.x.memory.buffer);
    for (let i = 0; i < ids.length; i++) u32[at + i] = ids[i];
  }

  /** The stack ids found in the core's stack cache since the last call. */
  takeUsed(): number[] {
    const n = this.x.take_used();
    const at = this.mail(MB.scratch) / 4;
    return Array.from(new Uint32Array(this.x.memory.buffer, at * 4, n));
  }
}
