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

/** Housekeeping rounds between looks in /proc for ends whose record was lost (~5 s). */
const SCAN_ROUNDS = 20;

/** The traced processes of a session. */
export class Processes {
  readonly #programs: Programs;
  readonly #live: LiveGoroutines;
  readonly #log: Logger;
  readonly #byPid = new Map<number, Program>();
  /** Labels of the traced processes (host-wide mode): executable as each sees it, container id. */
  readonly #labels = new Map<number, { exe: string; container: string | null }>();
  /** Processes running a traced executable that gmon was told to leave out: their records are dropped. */
  readonly #ignored = new Set<number>();
  /** Pids whose end was logged: each is said once, whichever of the records or /proc tells first. */
  readonly #gone = new Set<number>();
  /** Processes whose end was recorded, unless an exec record follows (see {@link process}). */
  readonly #ending = new Map<number, number>();
  /** Housekeeping rounds so far. */
  #round = 0;
  /**
   * Whether processes' ends come as records (the exit tracepoint is attached): /proc then only has to
   * catch the ends whose record was lost, and is looked at every {@link SCAN_ROUNDS} rounds, not each.
   */
  endsRecorded = false;
  /** The pid of the last record and whether it is traced: most records come from the same process. */
  #lastPid = -1;
  #lastTraced = false;
  /** Set when the one process of a -pid or launch session ends or runs another executable. */
  ended = false;
  /** The one process traced (-pid, launch mode); null: every process of the executables. */
  readonly onePid: number | null;
  /**
   * Decides whether process `pid`, which runs the executable `key` and is not traced yet, is to be
   * (and if so adds it). By default: any process of a traced executable (-path), or the one process.
   */
  admit: (pid: number, key: string) => boolean = (pid, key) => {
    const p = this.#programs.byKey(key);
    if (p === undefined || (this.onePid !== null && pid !== this.onePid)) return false;
    this.add(pid, p);
    return true;
  };

  /** Called as a process stops being traced (what was cached by its pid, its labels, goes). */
  onForget: (pid: number) => void = () => {};

  constructor(programs: Programs, live: LiveGoroutines, log: Logger, onePid: number | null) {
    this.#programs = programs;
    this.#live = live;
    this.#log = log;
    this.onePid = onePid;
  }

  /**
   * Starts tracking `pid` as a process of `p`; `labels`: its executable's path as it sees it, and its
   * container (host-wide mode).
   */
  add(pid: number, p: Program, labels?: { exe: string; container: string | null }): void {
    this.#byPid.get(pid)?.pids.delete(pid);
    this.#byPid.set(pid, p);
    p.pids.add(pid);
    if (labels !== undefined) this.#labels.set(pid, labels);
    this.#gone.delete(pid);
    this.#ignored.delete(pid);
    if (this.#lastPid === pid) this.#lastPid = -1;
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
    return { reader: p.reader, segments: p.segments, bias, goMinor: p.target.release.minor };
  }

  /** The program process `pid` runs, if traced. */
  programOf(pid: number): Program | undefined {
    return this.#byPid.get(pid);
  }

  /** What tells process `pid` apart in a fleet: its executable, and its container where it has one. */
  labels(pid: number): [string, string][] {
    const own = this.#labels.get(pid);
    const exe = own?.exe ?? this.#byPid.get(pid)?.exe;
    const out: [string, string][] = exe === undefined ? [] : [["exe", exe]];
    if (own?.container != null) out.push(["container", own.container]);
    return out;
  }

  /**
   * A goroutine record came from `pid` through `site`: whether it is to be used (the pid is traced, or
   * now admitted; a process left out is not).
   */
  readonly seen = (pid: number, site: ProbeSite): boolean => {
    if (pid === this.#lastPid) return this.#lastTraced;
    const p = this.#byPid.get(pid);
    let traced = p !== undefined && p.key === site.key;
    if (!traced && !this.#ignored.has(pid)) {
      traced = this.admit(pid, site.key);
      if (!traced) this.#ignored.add(pid);
    }
    this.#lastPid = pid;
    this.#lastTraced = traced;
    return traced;
  };

  /** An exec or a process's end, from the ring: any process of the host. */
  readonly process = (kind: "exec" | "gone", pid: number): void => {
    if (kind === "gone") {
      this.#ignored.delete(pid);
      // An exec from a thread other than the first ends that thread, the leader, first: the process
      // lives on, and its exec record follows. So an end is taken as such only if no exec follows.
      if (pid === this.onePid || this.#byPid.has(pid) || this.#live.has(pid)) {
        this.#ending.set(pid, this.#round);
      }
      return;
    }
    this.#ending.delete(pid);
    this.#ignored.delete(pid);
    const was = this.#byPid.get(pid);
    // A traced process's new image numbers its goroutines from 1 again: what was known of it goes.
    if (this.#live.has(pid)) this.exited(pid, "process exec'd");
    if (was !== undefined) this.#forget(pid);
    const key = exeKey(pid);
    const traced = key !== null && this.admit(pid, key);
    if (!traced && was !== undefined && pid === this.onePid) this.ended = true;
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
      // Still there: the end was its first thread's, in an exec slower than a round (a loaded machine);
      // the exec record, when it comes, says the rest.
      if (processAlive(pid)) continue;
      if (pid === this.onePid) this.ended = true;
      else this.exited(pid, "process exited");
    }
    this.#round++;
    if (this.onePid !== null) {
      if (!processAlive(this.onePid)) this.ended = true;
      return;
    }
    // A look at every traced process costs two system calls each: on a host of hundreds, now and then.
    if (this.endsRecorded && this.#round % SCAN_ROUNDS !== 0) return;
    // Those with an end pending are the rounds above's to judge (an exec may follow).
    for (const pid of this.#byPid.keys()) {
      if (!this.#ending.has(pid) && !processAlive(pid)) this.exited(pid, "process exited");
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
    this.onForget(pid);
    const p = this.#byPid.get(pid);
    this.#byPid.delete(pid);
    this.#labels.delete(pid);
    p?.pids.delete(pid);
    if (this.#lastPid === pid) this.#lastPid = -1;
  }
}
