/**
 * The event lines: one slog line per goroutine creation and exit, in the seed's shape, in either
 * format (text or JSON) through one {@link Encoding}.
 *
 * @module
 */
import type { StackEntry } from "../symbolize/stacks.ts";
import { type Encoding, TEXT } from "./slog.ts";

export { formatLifetime } from "./slog.ts";

/** Formats creations and exits; the caller decides whether INFO is enabled. */
export class EventLines {
  readonly #enc: Encoding;
  readonly #showPid: boolean;
  readonly #pidKey: string;
  readonly #truncated: string;
  readonly #createdKey: string;
  readonly #lifetimeKey: string;
  readonly #end: string;
  #lastMs = -1;
  /** This millisecond's lines up to goroutine_id's value, for creations and exits. */
  #created = "";
  #exited = "";

  /**
   * `showPid`: add `pid=` to each line (when gmon is not limited to one process). `enc`: the format; its
   * stacks' {@link StackEntry.attrs} must come from a StackTable with the same encoding.
   */
  constructor(showPid: boolean, enc: Encoding = TEXT) {
    this.#enc = enc;
    this.#showPid = showPid;
    this.#pidKey = enc.key("pid");
    this.#truncated = enc.attr("stack_truncated", true);
    this.#createdKey = enc.key("created_stack_id");
    this.#lifetimeKey = enc.key("lifetime");
    this.#end = enc.end;
  }

  /** `time=... level=INFO msg=runtime.newproc1 goroutine_id=N stack_id=S stack.0=...` */
  created(epochMs: number, goid: number, stack: StackEntry, pid: number, truncated: boolean): string {
    if (Math.floor(epochMs) !== this.#lastMs) this.#setTime(epochMs);
    return this.#created + goid + stack.attrs + (truncated ? this.#truncated : "") +
      (this.#showPid ? this.#pidKey + pid : "") + this.#end;
  }

  /**
   * `time=... level=INFO msg=runtime.goexit1 goroutine_id=N stack_id=S stack.0=...`, then for a
   * goroutine seen created (`createdStackId` > 0) ` created_stack_id=C lifetime=1.503s` (in JSON the
   * lifetime is integer nanoseconds, as Go's JSONHandler writes a time.Duration).
   */
  exited(
    epochMs: number,
    goid: number,
    stack: StackEntry,
    pid: number,
    createdStackId = 0,
    lifetimeNs = 0,
  ): string {
    if (Math.floor(epochMs) !== this.#lastMs) this.#setTime(epochMs);
    const created = createdStackId > 0
      ? this.#createdKey + createdStackId + this.#lifetimeKey + this.#enc.duration(lifetimeNs)
      : "";
    return this.#exited + goid + stack.attrs + created + (this.#showPid ? this.#pidKey + pid : "") +
      this.#end;
  }

  /** Events come in bursts within one millisecond: format each millisecond once. */
  #setTime(epochMs: number): void {
    const ms = Math.floor(epochMs);
    this.#lastMs = ms;
    const enc = this.#enc;
    const time = enc.time(ms);
    const goid = enc.key("goroutine_id");
    this.#created = enc.head(time, "INFO", "runtime.newproc1") + goid;
    this.#exited = enc.head(time, "INFO", "runtime.goexit1") + goid;
  }
}
