/**
 * What each record from the ring does: a creation or an exit, applied to the state and, when events
 * are logged, written as a line; or a process's exec or end, handed on. This runs once per event at up
 * to millions a second, so it decodes into one reused record, looks stacks up by their PCs, and writes
 * bytes: nothing is allocated and no string is made per event.
 *
 * @module
 */
import type { ProbeSpec } from "../bpf/probes.ts";
import { decodeRecord, Flags, GoroutineRecord, Kind } from "../bpf/record.ts";
import type { RecordSink } from "../bpf/ringbuf.ts";
import type { EventLines, LineSink } from "../log/events.ts";
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

  constructor(targets: RecordTargets, unknownStack: StackEntry | null = null) {
    this.#t = targets;
    this.#unknownStack = unknownStack;
  }

  /** The sink to drain the ring into. */
  readonly onRecord: RecordSink = (view, at, len) => {
    const rec = this.#rec;
    if (decodeRecord(view, at, len, rec) !== null) {
      this.malformed++;
      return;
    }
    switch (rec.kind) {
      case Kind.Create:
        return this.#created(rec);
      case Kind.Exit:
        return this.#exited(rec);
      case Kind.Exec:
        return this.#t.process?.("exec", rec.pid);
      default:
        return this.#t.process?.("gone", rec.pid);
    }
  };

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
    if (t.live.create(rec.pid, rec.goid, stack.id, rec.timeNs) && t.lines !== null) {
      this.#at(t.lines.format, rec);
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
    this.#at(t.lines.format, rec);
    t.lines.format.exited(t.lines.out, rec.goid, stack, rec.pid, createdId, t.live.lastLifetimeNs);
  }

  /**
   * Tells the lines the time of `rec` when its millisecond is a new one. Given the record, not its
   * time: a double passed to a call the JIT doesn't inline is boxed, an allocation per event.
   */
  #at(lines: EventLines, rec: GoroutineRecord): void {
    const ms = Math.floor(this.#t.epochOffsetMs + rec.timeNs / 1e6);
    if (ms === this.#ms) return;
    this.#ms = ms;
    lines.at(ms);
  }
}
