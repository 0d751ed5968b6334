/**
 * Readings of the traced processes while gmon traces them: taken on demand (the endpoint) and on a
 * timer (so that leak verdicts rest on gmon's own observation over time), one at a time — requests
 * that arrive while one is under way share it — each with its leak verdicts.
 *
 * @module
 */
import { monotonicNs } from "../bpf/native.ts";
import type { Segment } from "../target/wasm.ts";
import type { Goroutine } from "./goroutine.ts";
import { heldByGlobals } from "./globals.ts";
import { type LeakVerdict, LeakWatch } from "./leak.ts";
import { ProcessMemory } from "./memory.ts";
import type { Snapshot, SnapshotReader } from "./read.ts";

/** One process read, with the verdicts on its goroutines. */
export interface Reading {
  snapshot: Snapshot;
  /** Leaked goroutines by goid. */
  leaked: ReadonlyMap<number, LeakVerdict>;
  /** The Go minor release of the process's executable, when known (how its dump is printed). */
  goMinor?: number;
}

/** How to read one process: its executable's reader and segments, and its load bias. */
export interface ProcessSource {
  reader: SnapshotReader;
  segments: readonly Segment[];
  bias: number;
  /** Its executable's Go minor release (how its dumps are printed). */
  goMinor: number;
}

/** Where readings come from: which processes to read now, and how. */
export interface Sources {
  /** How to read process `pid`; null when it can't be (gone, or its executable's layout unknown). */
  sourceOf(pid: number): ProcessSource | null;
  /** The processes to read now. */
  pids(): number[];
  leakAfterNs: number;
}

/** Readings of every traced process, with leak watches kept across them. */
export class LiveSnapshots {
  readonly #src: Sources;
  readonly #watches = new Map<number, LeakWatch>();
  #last: { atMs: number; readings: Reading[]; takenNs: number } | null = null;
  #inFlight: Promise<Reading[]> | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Readings that failed (a process gone mid-read): they are skipped, the others still served. */
  failures = 0;

  constructor(src: Sources) {
    this.#src = src;
  }

  /** The leak-after threshold verdicts use, ns. */
  get leakAfterNs(): number {
    return this.#src.leakAfterNs;
  }

  /**
   * Readings at most `maxAgeMs` old: the one under way if any, else a new one unless the last is
   * young enough.
   */
  current(maxAgeMs = 0): Promise<Reading[]> {
    if (this.#inFlight !== null) return this.#inFlight;
    if (this.#last !== null && Date.now() - this.#last.atMs <= maxAgeMs) {
      return Promise.resolve(this.#last.readings);
    }
    this.#inFlight = this.#readAll().finally(() => this.#inFlight = null);
    return this.#inFlight;
  }

  /**
   * `readings` with each process read again with every frame's arguments, as a dump prints them (the
   * verdicts kept); a process that can't be read again keeps its reading.
   */
  async withArguments(readings: readonly Reading[]): Promise<Reading[]> {
    const out: Reading[] = [];
    for (const r of readings) {
      const src = this.#src.sourceOf(r.snapshot.pid);
      try {
        if (src !== null) {
          out.push({ ...r, snapshot: await src.reader.read(r.snapshot.pid, src.bias, { args: true }) });
          continue;
        }
      } catch {
        this.failures++;
      }
      out.push(r);
    }
    return out;
  }

  /** The last readings taken and when (CLOCK_MONOTONIC), or null before the first (never reads). */
  get lastTaken(): { readings: readonly Reading[]; takenNs: number } | null {
    return this.#last;
  }

  /** Reads the channels `goroutines` of the reading of process `pid` wait on (see SnapshotReader.channels). */
  channels(pid: number, goroutines: readonly Goroutine[]): void {
    try {
      this.#src.sourceOf(pid)?.reader.channels(pid, goroutines);
    } catch { /* the process is gone: no channels to tell */ }
  }

  /** Reads every `everyMs` in the background until {@link close}. */
  watch(everyMs: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.current(0).catch(() => this.failures++), everyMs);
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #readAll(): Promise<Reading[]> {
    const takenNs = monotonicNs();
    const readings: Reading[] = [];
    const pids = this.#src.pids();
    for (const pid of pids) {
      const src = this.#src.sourceOf(pid);
      if (src === null) continue;
      try {
        readings.push(this.#judge(await src.reader.read(pid, src.bias), src));
      } catch {
        this.failures++;
      }
    }
    for (const pid of this.#watches.keys()) if (!pids.includes(pid)) this.#watches.delete(pid);
    this.#last = { atMs: Date.now(), readings, takenNs };
    return readings;
  }

  #judge(snapshot: Snapshot, src: ProcessSource): Reading {
    let watch = this.#watches.get(snapshot.pid);
    if (watch === undefined) {
      watch = new LeakWatch();
      this.#watches.set(snapshot.pid, watch);
    }
    watch.observe(snapshot.goroutines, snapshot.startNs);
    const reading = judge(watch, snapshot, src.reader, src.segments, src.bias, this.#src.leakAfterNs);
    return { ...reading, goMinor: src.goMinor };
  }
}

/**
 * The leak verdicts on a reading that `watch` has observed: the watch's timing, less the goroutines
 * blocked on a channel that a global holds (read from the process's data and bss).
 */
export function judge(
  watch: LeakWatch,
  snapshot: Snapshot,
  reader: SnapshotReader,
  segments: readonly Segment[],
  bias: number,
  leakAfterNs: number,
): Reading {
  const now = monotonicNs();
  const candidates = snapshot.goroutines.filter((g: Goroutine) =>
    watch.verdict(g, now, leakAfterNs) !== null
  );
  reader.channels(snapshot.pid, candidates);
  const channels = new Set(candidates.flatMap((g) => g.waitingOn));
  const held = heldByGlobals(new ProcessMemory(snapshot.pid), segments, bias, channels);
  const leaked = new Map<number, LeakVerdict>();
  for (const g of candidates) {
    const v = watch.verdict(g, now, leakAfterNs, held);
    if (v !== null) leaked.set(g.goid, v);
  }
  return { snapshot, leaked };
}
