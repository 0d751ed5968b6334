/**
 * Which goroutines are alive, per process: the tracer's state between a creation and its exit.
 *
 * @module
 */

/** How many exited goids to remember per process for telling repeated exits apart. */
const RECENT_EXITS = 4096;

/** {@link LiveGoroutines.exit} of a goroutine created before gmon attached (stack ids start at 1). */
export const PREEXISTING = 0;
/** {@link LiveGoroutines.exit} of a goroutine whose exit was already reported. */
export const REPEAT = -1;

interface ProcessTable {
  /** goid -> creation stack id */
  live: Map<number, number>;
  /** Recent exits, oldest first. */
  recent: Set<number>;
}

/** Live goroutines by pid, with the counts the summary reports. */
export class LiveGoroutines {
  /** Creations seen (a goid reported twice counts once). */
  created = 0;
  /** Exits of goroutines seen created. */
  exited = 0;
  /** Exits of goroutines created before gmon attached. */
  preexisting = 0;
  readonly #byPid = new Map<number, ProcessTable>();
  #lastPid = -1;
  #last: ProcessTable | undefined;

  /** Records a creation; false if that goroutine was already live (a repeated report). */
  create(pid: number, goid: number, stackId: number): boolean {
    const t = this.#table(pid);
    if (t.live.has(goid)) return false;
    t.live.set(goid, stackId);
    this.created++;
    return true;
  }

  /**
   * Records an exit. Returns the creation stack id; PREEXISTING for a goroutine created before gmon
   * attached; REPEAT for a second report of a recent exit (goexit1 can restart after a preemption,
   * ~1 in 10^6 exits), which callers ignore.
   */
  exit(pid: number, goid: number): number {
    const t = this.#table(pid);
    const stackId = t.live.get(goid);
    if (stackId === undefined) {
      if (t.recent.has(goid)) return REPEAT;
      this.preexisting++;
      return PREEXISTING;
    }
    t.live.delete(goid);
    this.exited++;
    // Bounded: a repeat comes right after the first report.
    t.recent.add(goid);
    if (t.recent.size > RECENT_EXITS) t.recent.delete(t.recent.values().next().value!);
    return stackId;
  }

  /** Goroutines alive now, over every process. */
  get live(): number {
    let n = 0;
    for (const t of this.#byPid.values()) n += t.live.size;
    return n;
  }

  /** Pids seen so far and not dropped. */
  pids(): number[] {
    return [...this.#byPid.keys()];
  }

  /** Forgets process `pid` (it exited) and returns how many goroutines it still had. */
  dropProcess(pid: number): number {
    const n = this.#byPid.get(pid)?.live.size ?? 0;
    this.#byPid.delete(pid);
    if (this.#lastPid === pid) {
      this.#lastPid = -1;
      this.#last = undefined;
    }
    return n;
  }

  #table(pid: number): ProcessTable {
    if (pid === this.#lastPid) return this.#last!;
    let t = this.#byPid.get(pid);
    if (t === undefined) {
      t = { live: new Map(), recent: new Set() };
      this.#byPid.set(pid, t);
    }
    this.#lastPid = pid;
    this.#last = t;
    return t;
  }
}
