/**
 * What each record from the ring does: a creation or an exit, applied to the state and, when events
 * are logged, written as a line. This runs once per event at up to millions a second, so it decodes
 * into one reused record, looks stacks up by their PCs, and writes bytes: nothing is allocated and no
 * string is made per event.
 *
 * @module
 */
import type { ProbeSpec } from "./bpf/probes.ts";
import { decodeRecord, Flags, GoroutineRecord, Kind } from "./bpf/record.ts";
import type { RecordSink } from "./bpf/ringbuf.ts";
import type { EventLines, LineSink } from "./log/events.ts";
import { type LiveGoroutines, REPEAT } from "./state/live.ts";
import type { StackEntry, StackTable } from "./symbolize/stacks.ts";

/** What records are applied to. */
export interface RecordTargets {
  /** The attached probes, by the index each record carries. */
  probes: readonly ProbeSpec[];
  stacks: StackTable;
  /** Load bias of a process (0 unless PIE); null when it can't be known (the process is gone). */
  biasOf: (pid: number) => number | null;
  live: LiveGoroutines;
  /** Where event lines go; none: events are not logged (below INFO). */
  lines: { format: EventLines; out: LineSink } | null;
  /** Epoch ms of CLOCK_MONOTONIC 0, for the lines' times. */
  epochOffsetMs: number;
}

/** Applies ring records; counts those it can't use. */
export class RecordConsumer {
  /** Records that don't fit their own layout (a mismatched BPF object). */
  malformed = 0;
  /** Creations whose PCs can't be placed: a PIE process gone before its mappings were read. */
  unplaced = 0;
  readonly #t: RecordTargets;
  readonly #rec = new GoroutineRecord();
  /** Each probe's stack on exit lines: an exit probe's own address (exits carry no stack). */
  readonly #exitStacks: StackEntry[];
  readonly #unknownStack: StackEntry;

  constructor(targets: RecordTargets) {
    this.#t = targets;
    this.#unknownStack = targets.stacks.fixed([]);
    this.#exitStacks = targets.probes.map((p) =>
      p.program === "gmon_exit" ? targets.stacks.fixed([p.addr]) : this.#unknownStack
    );
  }

  /** The sink to drain the ring into. */
  readonly onRecord: RecordSink = (view, at, len) => {
    const rec = this.#rec;
    if (decodeRecord(view, at, len, rec) !== null) {
      this.malformed++;
      return;
    }
    if (rec.kind === Kind.Create) this.#created(rec);
    else this.#exited(rec);
  };

  #created(rec: GoroutineRecord): void {
    const t = this.#t;
    const probe = t.probes[(rec.flags >>> Flags.probeShift) & 0xff];
    // A probe on an instruction (not a return) captures its own address first: the bias follows.
    const exact = probe !== undefined && !probe.retprobe && rec.nframes > 0;
    const bias = exact ? rec.frame(0) - probe.addr : t.biasOf(rec.pid);
    if (bias === null) {
      this.unplaced++;
      return;
    }
    const stack = t.stacks.intern(rec, bias, exact);
    if (t.live.create(rec.pid, rec.goid, stack.id, rec.timeNs) && t.lines !== null) {
      const ms = t.epochOffsetMs + rec.timeNs / 1e6;
      const truncated = (rec.flags & Flags.Truncated) !== 0;
      t.lines.format.created(t.lines.out, ms, rec.goid, stack, rec.pid, truncated);
    }
  }

  #exited(rec: GoroutineRecord): void {
    const t = this.#t;
    const createdId = t.live.exit(rec.pid, rec.goid, rec.timeNs);
    if (createdId === REPEAT || t.lines === null) return;
    const ms = t.epochOffsetMs + rec.timeNs / 1e6;
    const stack = this.#exitStacks[(rec.flags >>> Flags.probeShift) & 0xff] ?? this.#unknownStack;
    t.lines.format.exited(t.lines.out, ms, rec.goid, stack, rec.pid, createdId, t.live.lastLifetimeNs);
  }
}
