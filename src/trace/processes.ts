/**
 * Which processes run which traced executable, kept current from the ring's exec and exit records
 * (with a check of /proc as a fallback, should those records be lost): a process's state goes when it
 * ends, and starts over when it execs (the new image numbers its goroutines from 1 again).
 *
 * @module
 */
import type { Logger } from "../log/slog.ts";
import type { LiveGoroutines } from "../state/live.ts";
import { processAlive } from "../target/procfs.ts";
import type { ProcessSource } from "../snapshot/source.ts";
import { fileKey, type Program, type Programs } from "./programs.ts";
import type { ProbeSite } from "./records.ts";

/** The key of the executable process `pid` runs now; null when it is gone or can't be told. */
export function exeKey(pid: number): string | null {
  try {
    return fileKey(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** The traced processes of a session. */
export class Processes {
  readonly #programs: Programs;
  readonly #live: LiveGoroutines;
  readonly #log: Logger;
  readonly #byPid = new Map<number, Program>();
  /** Pids whose end was logged: each is said once, whichever of the records or /proc tells first. */
  readonly #gone = new Set<number>();
  /** Processes whose end was recorded, unless an exec record follows (see {@link process}). */
  readonly #ending = new Map<number, number>();
  /** Housekeeping rounds so far. */
  #round = 0;
  /** The pid of the last record, known to be tracked: most records come from the same process. */
  #lastPid = -1;
  /** Set when the one process of a -pid or launch session ends or runs another executable. */
  ended = false;
  /** The one process traced (-pid, launch mode); null: every process of the executables. */
  readonly onePid: number | null;
  /** Called for an exec of a process gmon does not trace (host-wide mode looks at it). */
  onOtherExec: (pid: number, key: string) => void = () => {};

  constructor(programs: Programs, live: LiveGoroutines, log: Logger, onePid: number | null) {
    this.#programs = programs;
    this.#live = live;
    this.#log = log;
    this.onePid = onePid;
  }

  /** Starts tracking `pid` as a process of `p`. */
  add(pid: number, p: Program): void {
    this.#byPid.set(pid, p);
    p.pids.add(pid);
    this.#gone.delete(pid);
  }

  /** The processes traced now. */
  pids(): number[] {
    return [...this.#byPid.keys()];
  }

  /** How to read process `pid`'s goroutines; null if it isn't traced or can't be read. */
  sourceOf(pid: number): ProcessSource | null {
    const p = this.#byPid.get(pid);
    const bias = p?.biases.of(pid) ?? null;
    if (p === undefined || p.reader === null || bias === null) return null;
    return { reader: p.reader, segments: p.segments, bias };
  }

  /** The program process `pid` runs, if traced. */
  programOf(pid: number): Program | undefined {
    return this.#byPid.get(pid);
  }

  /** A goroutine record came from `pid` through `site`: the pid runs that site's executable. */
  readonly seen = (pid: number, site: ProbeSite): void => {
    if (pid === this.#lastPid) return;
    const p = this.#programs.byKey(site.key);
    if (p !== undefined && this.#byPid.get(pid) !== p) this.add(pid, p);
    this.#lastPid = pid;
  };

  /** An exec or a process's end, from the ring: any process of the host. */
  readonly process = (kind: "exec" | "gone", pid: number): void => {
    if (kind === "gone") {
      // An exec from a thread other than the first ends that thread, the leader, first: the process
      // lives on, and its exec record follows. So an end is taken as such only if no exec follows.
      if (pid === this.onePid || this.#byPid.has(pid) || this.#live.has(pid)) {
        this.#ending.set(pid, this.#round);
      }
      return;
    }
    this.#ending.delete(pid);
    const was = this.#byPid.get(pid);
    const key = exeKey(pid);
    const now = key === null ? undefined : this.#programs.byKey(key);
    if (was === undefined && now === undefined) {
      if (this.onePid === null && key !== null) this.onOtherExec(pid, key);
      return;
    }
    if (this.#live.has(pid)) this.exited(pid, "process exec'd");
    if (now !== undefined) return this.add(pid, now);
    this.#forget(pid);
    if (pid === this.onePid) this.ended = true;
  };

  /**
   * Takes the ends recorded since the last call as such (no exec followed), and looks for traced
   * processes that ended without a record saying so (lost records).
   */
  housekeeping(): void {
    // An exec takes a few ms after the leader's end: an end seen in this round waits for the next.
    for (const [pid, round] of this.#ending) {
      if (round === this.#round) continue;
      this.#ending.delete(pid);
      if (pid === this.onePid) this.ended = true;
      else this.exited(pid, "process exited");
    }
    this.#round++;
    if (this.onePid !== null) {
      if (!processAlive(this.onePid)) this.ended = true;
      return;
    }
    for (const pid of this.#byPid.keys()) {
      if (!processAlive(pid)) this.exited(pid, "process exited");
    }
    for (const pid of this.#live.pids()) {
      if (!this.#byPid.has(pid) && !processAlive(pid)) this.exited(pid, "process exited");
    }
  }

  /** Drops process `pid`'s state, saying why at INFO (once per end). */
  exited(pid: number, msg: string): void {
    const live = this.#live.dropProcess(pid);
    if (msg === "process exec'd" || !this.#gone.has(pid)) this.#log.info(msg, [["pid", pid], ["live", live]]);
    this.#byPid.get(pid)?.biases.forget(pid);
    if (msg === "process exited") {
      this.#gone.add(pid);
      this.#forget(pid);
    }
  }

  #forget(pid: number): void {
    const p = this.#byPid.get(pid);
    this.#byPid.delete(pid);
    p?.pids.delete(pid);
    if (this.#lastPid === pid) this.#lastPid = -1;
  }
}
