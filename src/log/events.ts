/**
 * The event lines: one slog line per goroutine creation and exit, in the seed's shape, in either
 * format (text or JSON) through one {@link Encoding}. The lines are assembled by the drain's core
 * (WebAssembly, src/state/core.ts), where the record loop writes them without a call per event: this
 * module encodes the pieces it asks for, once each (a millisecond's heads, a stack's attributes, a
 * process's line end), and is the way to write a line from here (records the core hands back).
 *
 * @module
 */
import type { StackEntry } from "../symbolize/stacks.ts";
import { DrainCore, Status } from "../state/core.ts";
import { asciiInto } from "./bytes.ts";
import { type Encoding, TEXT } from "./slog.ts";

export { formatLifetime } from "./slog.ts";

/** Where lines go: batches of whole lines, valid only during the call. */
export interface LineSink {
  put(bytes: Uint8Array): void;
}

const UTF8 = new TextEncoder();

/** Formats creations and exits; the caller decides whether INFO is enabled. */
export class EventLines {
  /** The core the lines are written in (that of the live goroutines, when records are applied). */
  readonly core: DrainCore;
  readonly #enc: Encoding;
  readonly #showPid: boolean;
  /** Labels after the pid (host-wide mode: the process's executable and container). */
  readonly #labels: (pid: number) => readonly (readonly [string, string])[];
  /** Each process's line end, made once. */
  readonly #ends = new Map<number, Uint8Array>();
  /** The stacks the core may ask the attributes of, by slot. */
  readonly #bySlot: (StackEntry | undefined)[] = [];
  #ms = NaN;

  /**
   * `showPid`: add `pid=` to each line (when gmon is not limited to one process). `enc`: the format; its
   * stacks' {@link StackEntry.attrs} must come from a StackTable with the same encoding. `labels`: more
   * attributes of a process, after its pid. `core`: where lines are written.
   */
  constructor(
    showPid: boolean,
    enc: Encoding = TEXT,
    labels: (pid: number) => readonly (readonly [string, string])[] = () => [],
    core: DrainCore = new DrainCore(),
  ) {
    this.core = core;
    this.#enc = enc;
    this.#showPid = showPid;
    this.#labels = labels;
    core.x.set_lines(1, enc.format === "json" ? 1 : 0);
    const pieces = [enc.attr("stack_truncated", true), enc.key("created_stack_id"), enc.key("lifetime")];
    pieces.forEach((piece, i) => {
      this.#put(UTF8.encode(piece));
      core.x.set_piece(i);
    });
  }

  /** The time of the lines that follow (epoch ms; a line says the millisecond it is in). */
  at(epochMs: number): void {
    this.#ms = Math.floor(epochMs);
  }

  /** `time=... level=INFO msg=runtime.newproc1 goroutine_id=N stack_id=S stack.0=...` */
  created(out: LineSink, goid: number, stack: StackEntry, pid: number, truncated: boolean): void {
    this.know(stack);
    const x = this.core.x;
    const t = truncated ? 1 : 0;
    for (let s = x.line_created(this.#ms, goid, stack.slot, stack.id, pid, t); s !== 0;) {
      this.provide(s);
      s = x.line_created(this.#ms, goid, stack.slot, stack.id, pid, t);
    }
    this.drainTo(out);
  }

  /**
   * `time=... level=INFO msg=runtime.goexit1 goroutine_id=N stack_id=S stack.0=...`, then for a
   * goroutine seen created (`createdStackId` > 0) ` created_stack_id=C lifetime=1.503s` (in JSON the
   * lifetime is integer nanoseconds, as Go's JSONHandler writes a time.Duration).
   */
  exited(
    out: LineSink,
    goid: number,
    stack: StackEntry,
    pid: number,
    createdStackId = 0,
    lifetimeNs = 0,
  ): void {
    this.know(stack);
    const x = this.core.x;
    const line = () => x.line_exited(this.#ms, goid, stack.slot, stack.id, pid, createdStackId, lifetimeNs);
    for (let s = line(); s !== 0; s = line()) this.provide(s);
    this.drainTo(out);
  }

  /** The core may ask for `stack`'s attributes from now on. */
  know(stack: StackEntry): void {
    this.#bySlot[stack.slot] = stack;
  }

  /** Gives the core the piece a line lacks (what a stop with `status` asks); false for another stop. */
  provide(status: number): boolean {
    const core = this.core;
    if (status === Status.heads) {
      const ms = core.askMs;
      const enc = this.#enc;
      const time = enc.time(ms);
      const goid = enc.key("goroutine_id");
      const created = enc.head(time, "INFO", "runtime.newproc1") + goid;
      const exited = enc.head(time, "INFO", "runtime.goexit1") + goid;
      // Once a millisecond while events come: written as they are (a time, constant names: ASCII)
      // rather than encoded (an allocation and an engine call each, ~0.8 us).
      const at = core.x.bytes(created.length + exited.length);
      const u8 = core.u8;
      if (!asciiInto(created, u8, at) || !asciiInto(exited, u8, at + created.length)) {
        throw new Error(`event lines: a line's head is not ASCII: ${created}`);
      }
      core.x.set_heads(ms, created.length);
    } else if (status === Status.attrs) {
      const [slot, id] = [core.askSlot, core.askStack];
      const stack = this.#bySlot[slot];
      if (stack?.id !== id) throw new Error(`event lines: stack ${id} (slot ${slot}) was never given`);
      this.#put(stack.attrBytes);
      core.x.set_attrs(slot, id);
    } else if (status === Status.end) {
      const pid = core.askPid;
      this.#put(this.#end(pid));
      core.x.set_end(pid);
    } else return false;
    return true;
  }

  /** Moves the lines the core wrote to `out`. */
  drainTo(out: LineSink): void {
    const { at, n } = this.core.out();
    if (n === 0) return;
    out.put(this.core.u8.subarray(at, at + n));
    this.core.x.clear_out();
  }

  /** Copies `bytes` to the core's byte scratch. */
  #put(bytes: Uint8Array): void {
    const at = this.core.x.bytes(bytes.length);
    this.core.u8.set(bytes, at);
  }

  /** ` pid=N`, the process's labels and the line's end; the end alone when pids aren't shown. */
  #end(pid: number): Uint8Array {
    let end = this.#ends.get(pid);
    if (end === undefined) {
      const enc = this.#enc;
      const labels = this.#labels(pid).map(([k, v]) => enc.attr(k, v)).join("");
      end = UTF8.encode((this.#showPid ? enc.key("pid") + pid : "") + labels + enc.end);
      // Bounded: the processes of a host, but pids are reused and labels change with an exec.
      if (this.#ends.size >= 1024) this.#ends.clear();
      this.#ends.set(pid, end);
    }
    return end;
  }

  /** A process's labels changed (it exec'd, or ended and its pid may come back). */
  forget(pid: number): void {
    this.#ends.delete(pid);
    this.core.x.forget_end(pid);
  }
}
