/**
 * The event lines: one slog text line per goroutine creation and exit, in the seed's shape.
 *
 * @module
 */
import type { StackEntry } from "../symbolize/stacks.ts";
import { formatTime } from "./slog.ts";

/** Formats creations and exits; the caller decides whether INFO is enabled. */
export class EventLines {
  readonly #showPid: boolean;
  #lastMs = -1;
  #prefix = "";

  /** `showPid`: add `pid=` to each line (when gmon is not limited to one process). */
  constructor(showPid: boolean) {
    this.#showPid = showPid;
  }

  /** `time=... level=INFO msg=runtime.newproc1 goroutine_id=N stack_id=S stack.0=...` */
  created(epochMs: number, goid: number, stack: StackEntry, pid: number, truncated: boolean): string {
    return this.#time(epochMs) + " level=INFO msg=runtime.newproc1 goroutine_id=" + goid + stack.attrs +
      (truncated ? " stack_truncated=true" : "") + this.#pid(pid) + "\n";
  }

  /** `time=... level=INFO msg=runtime.goexit1 goroutine_id=N stack_id=S stack.0=...` */
  exited(epochMs: number, goid: number, stack: StackEntry, pid: number): string {
    return this.#time(epochMs) + " level=INFO msg=runtime.goexit1 goroutine_id=" + goid + stack.attrs +
      this.#pid(pid) + "\n";
  }

  #pid(pid: number): string {
    return this.#showPid ? " pid=" + pid : "";
  }

  /** Events come in bursts within one millisecond: format each millisecond once. */
  #time(epochMs: number): string {
    const ms = Math.floor(epochMs);
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#prefix = "time=" + formatTime(ms);
    }
    return this.#prefix;
  }
}
