/**
 * What each record from the ring does: a creation or an exit, applied to the state and, when events
 * are logged, written as a line; or a process's exec or end, handed on. This runs once per event at up
 * to millions a second: the records are copied a chunk at a time into the drain's core (WebAssembly,
 * src/state/core.ts), which applies creations and exits of known stacks, probes and processes itself,
 * and writes their lines. It stops at a record it needs this module for (a new stack, process or
 * probe, a piece of a line, another kind of record), which this applies or tells it about.
 *
 * @module
 */
import type { ProbeSpec } from "../bpf/probes.ts";
import { decodeRecord, Flags, GoroutineRecord, Kind } from "../bpf/record.ts";
import { RING_HEADER, RING_LENGTH } from "../bpf/ringbuf.ts";
import type { EventLines, LineSink } from "../log/events.ts";
import { ProbeKind, Status } from "../state/core.ts";
import { type LiveGoroutines, REPEAT } from "../state/live.ts";
import type { StackEntry, StackTable } from "../symbolize/stacks.ts";

/** A probe as records name it: what it is and where its program's stacks and load biases are. */
export interface ProbeSite {
  spec: ProbeSpec;
  /** The key of the executable the probe is on (see programs.ts). */
  key: string;
  /** The stacks of the executable the probe is on. */
  stacks: StackTable;
  /** Load bias of a process of that executable (0 unless PIE); null when it can't be known. */
  biasOf(pid: number): number | null;
  /** An exit probe's one frame (exits carry no stack). */
  exitStack: StackEntry;
}

/** What records are applied to. */
export interface RecordTargets {
  /** The probe whose global index a record carries; undefined for one since detached. */
  site(index: number): ProbeSite | undefined;
  live: LiveGoroutines;
  /** Where event lines go; none: events are not logged (below INFO). */
  lines: { format: EventLines; out: LineSink } | null;
  /** Epoch ms of CLOCK_MONOTONIC 0, for the lines' times. */
  epochOffsetMs: number;
  /**
   * A creation or exit came from `pid` through `site` (the pid runs that probe's executable): false
   * when records of that process are to be dropped (a process gmon was told to leave out).
   */
  seen?(pid: number, site: ProbeSite): boolean;
  /** A process exec'd or ended: any process on the host; the caller tells which are its. */
  process?(kind: "exec" | "gone", pid: number): void;
}

/** Applies ring records; counts those it can't use. */
export class RecordConsumer {
  /** Records that don't fit their own layout (a mismatched BPF object). */
  malformed = 0;
  /** Creations whose PCs can't be placed: a PIE process gone before its mappings were read. */
  unplaced = 0;
  readonly #t: RecordTargets;
  readonly #rec = new GoroutineRecord();
  /** The exit line's stack of a probe no longer attached (a record still in the ring). */
  readonly #unknownStack: StackEntry | null;
  /** The epoch millisecond the lines were last told (see EventLines.at). */
  #ms = NaN;
  /** The core's numbers for the stack tables (executables come and go in host-wide mode). */
  readonly #tables = new WeakMap<StackTable, number>();
  #lastTable = 0;
  /** A view of the core's memory, for the records it hands back. */
  #view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  constructor(targets: RecordTargets, unknownStack: StackEntry | null = null) {
    if (targets.lines !== null && targets.lines.format.core !== targets.live.core) {
      throw new Error("the event lines must be written in the live goroutines' core");
    }
    this.#t = targets;
    this.#unknownStack = unknownStack;
    targets.live.core.x.set_epoch(targets.epochOffsetMs);
  }

  /**
   * Applies ring records, raw as the ring holds them (8-byte headers, 8-aligned), that are
   * `data[a, b)` followed by `data[c, d)` (the ring's end and start when they wrap).
   */
  readonly consume = (data: Uint8Array, a: number, b: number, c: number, d: number): void => {
    const core = this.#t.live.core;
    const n = b - a + d - c;
    const at = core.x.input(n);
    const u8 = core.u8;
    u8.set(data.subarray(a, b), at);
    if (d > c) u8.set(data.subarray(c, d), at + b - a);
    this.#run(n);
  };

  /**
   * Moves the lines written so far to the output. The core keeps them (up to a MiB) across chunks,
   * so that a drain's lines go out in as few writes as can be, straight from the core's memory:
   * whoever drains calls this at the end.
   */
  flush(): void {
    const lines = this.#t.lines;
    if (lines !== null) lines.format.drainTo(lines.out);
  }

  /** Forgets what the core was told of probes and processes: they may have changed since. */
  renew(): void {
    const x = this.#t.live.core.x;
    x.clear_probes();
    x.clear_verdicts();
  }

  #run(end: number): void {
    const core = this.#t.live.core;
    const lines = this.#t.lines;
    let from = 0;
    /** The last stop: its record and why. */
    let [lastAt, lastStatus] = [-1, -1];
    for (;;) {
      const status = core.x.run(from, end);
      if (status === Status.done) return;
      const cursor = core.cursor;
      // Told what it asked, the core goes on from the same record; a second stop there for the same
      // reason would be a bug's, and the record is applied here rather than asked about again.
      const again = cursor === lastAt && status === lastStatus && status !== Status.flush;
      if (status === Status.record || status === Status.stack || again) {
        this.#apply(cursor);
        from = core.next;
        continue;
      }
      from = cursor;
      [lastAt, lastStatus] = [cursor, status];
      if (status === Status.flush) this.flush();
      else if (status === Status.probe) this.#tellProbe(cursor);
      else if (status === Status.pid) this.#tellVerdict(cursor);
      else if (status === Status.agg) this.#t.live.numberAgg(core.askPid, core.askStack);
      else if (lines !== null) lines.format.provide(status);
    }
  }

  /** The record at the core's input offset `at` (its ring header's), decoded. */
  #decode(at: number): GoroutineRecord | null {
    const core = this.#t.live.core;
    const u8 = core.u8;
    if (this.#view.buffer !== u8.buffer) this.#view = new DataView(u8.buffer);
    const base = core.x.input(0) + at;
    const len = this.#view.getUint32(base, true) & RING_LENGTH;
    if (decodeRecord(this.#view, base + RING_HEADER, len, this.#rec) !== null) {
      this.malformed++;
      return null;
    }
    return this.#rec;
  }

  #tellProbe(at: number): void {
    const rec = this.#decode(at);
    if (rec === null) return;
    const index = (rec.flags >>> Flags.probeShift) & Flags.probeMask;
    const site = this.#t.site(index);
    let kind: number = ProbeKind.other;
    if (site !== undefined && rec.kind === Kind.Exit) kind = ProbeKind.exit;
    if (site !== undefined && rec.kind === Kind.Create && !site.spec.retprobe) kind = ProbeKind.create;
    const exit = site?.exitStack;
    if (exit !== undefined) this.#t.lines?.format.know(exit);
    const x = this.#t.live.core.x;
    x.set_probe(index, kind, this.#tableOf(site), site?.spec.addr ?? 0, exit?.slot ?? 0, exit?.id ?? 0);
  }

  #tellVerdict(at: number): void {
    // Admitting a process may write a line (host-wide mode): after the lines before it.
    this.flush();
    const rec = this.#decode(at);
    if (rec === null) return;
    const site = this.#t.site((rec.flags >>> Flags.probeShift) & Flags.probeMask);
    if (site === undefined) return;
    const traced = this.#t.seen?.(rec.pid, site) ?? true;
    if (traced) this.#t.live.touch(rec.pid);
    this.#t.live.core.x.set_verdict(rec.pid, this.#tableOf(site), traced ? 1 : 0);
  }

  #tableOf(site: ProbeSite | undefined): number {
    if (site === undefined) return 0;
    let n = this.#tables.get(site.stacks);
    if (n === undefined) this.#tables.set(site.stacks, n = ++this.#lastTable);
    return n;
  }

  /** Applies the record at the core's input offset `at` here. */
  #apply(at: number): void {
    const rec = this.#decode(at);
    if (rec === null) return;
    switch (rec.kind) {
      case Kind.Create:
        return this.#created(rec);
      case Kind.Exit:
        return this.#exited(rec);
      case Kind.Exec:
        // What a process's change writes (its end) comes after the lines before it.
        this.flush();
        this.#t.process?.("exec", rec.pid);
        break;
      default:
        this.flush();
        this.#t.process?.("gone", rec.pid);
    }
    // What the core was told of processes may have changed.
    this.#t.live.core.x.clear_verdicts();
  }

  #created(rec: GoroutineRecord): void {
    const t = this.#t;
    const site = t.site((rec.flags >>> Flags.probeShift) & Flags.probeMask);
    if (site === undefined) {
      this.unplaced++;
      return;
    }
    if (t.seen !== undefined && !t.seen(rec.pid, site)) return;
    // A probe on an instruction (not a return) captures its own address first: the bias follows.
    const exact = !site.spec.retprobe && rec.nframes > 0;
    const bias = exact ? rec.frame(0) - site.spec.addr : site.biasOf(rec.pid);
    if (bias === null) {
      this.unplaced++;
      return;
    }
    const stack = site.stacks.intern(rec, bias, exact);
    if (exact) {
      t.lines?.format.know(stack);
      t.live.core.x.learn(stack.id, stack.slot);
    }
    if (t.live.create(rec.pid, rec.goid, stack.id, rec.timeNs) && t.lines !== null) {
      this.#at(t.lines.format, rec.timeNs);
      const truncated = (rec.flags & Flags.Truncated) !== 0;
      t.lines.format.created(t.lines.out, rec.goid, stack, rec.pid, truncated);
    }
  }

  #exited(rec: GoroutineRecord): void {
    const t = this.#t;
    const site = t.site((rec.flags >>> Flags.probeShift) & Flags.probeMask);
    if (site !== undefined && t.seen !== undefined && !t.seen(rec.pid, site)) return;
    const createdId = t.live.exit(rec.pid, rec.goid, rec.timeNs);
    if (createdId === REPEAT || t.lines === null) return;
    const stack = site?.exitStack ?? this.#unknownStack;
    if (stack === null) return;
    this.#at(t.lines.format, rec.timeNs);
    t.lines.format.exited(t.lines.out, rec.goid, stack, rec.pid, createdId, t.live.lastLifetimeNs);
  }

  /** Tells the lines the time of an event when its millisecond is a new one. */
  #at(lines: EventLines, timeNs: number): void {
    const ms = Math.floor(this.#t.epochOffsetMs + timeNs / 1e6);
    if (ms === this.#ms) return;
    this.#ms = ms;
    lines.at(ms);
  }
}
