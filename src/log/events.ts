/**
 * The event lines: one slog line per goroutine creation and exit, in the seed's shape, in either
 * format (text or JSON) through one {@link Encoding}, assembled as bytes straight into the output.
 *
 * Copying bytes costs little, but each copy call costs ~40 ns whatever its size, so a line is one copy
 * of a template and a few numbers written into it. A template holds a line up to its first number,
 * that number's room, and what follows it, all pre-encoded: per creation stack (and process) for a
 * creation, per creation stack for an exit (whose lifetime and pid follow). Templates are brought up
 * to date when the millisecond changes (the time is in the line's head) or the goid's digit count
 * does, which is rare next to events. No string is made per event.
 *
 * @module
 */
import type { StackEntry } from "../symbolize/stacks.ts";
import { type ByteBuffer, digits, utf8 } from "./bytes.ts";
import { type Encoding, TEXT } from "./slog.ts";

export { formatLifetime } from "./slog.ts";

/** Where lines go: a buffer with room for `n` more bytes. */
export interface LineSink {
  room(n: number): ByteBuffer;
}

const UTF8 = new TextEncoder();

/**
 * Templates per stack: one per length of the head, which in JSON varies (its time drops trailing
 * zeros: `.587Z`, `.58Z`, `.5Z`, `Z`), so that a millisecond's change only rewrites a head in place.
 */
const SLOTS = 8;

/** Most bytes a lifetime takes, and the pid with the line's end. */
const TAIL_ROOM = 64;

/** A line up to the end of what is known before the event: `head` + goid's room + the rest. */
interface Template {
  /** Which stack, process and truncation it is for (an exit's: which exit stack). */
  key: number;
  /** The millisecond its head says. */
  ms: number;
  /** The goid digits it has room for, right after the head. */
  digits: number;
  headLength: number;
  bytes: Uint8Array;
}

/** Formats creations and exits; the caller decides whether INFO is enabled. */
export class EventLines {
  readonly #enc: Encoding;
  readonly #showPid: boolean;
  readonly #truncated: string;
  #ms = NaN;
  /** This millisecond's line starts, up to goroutine_id's value, for creations and exits. */
  readonly #createdHead = new Head();
  readonly #exitedHead = new Head();
  /** Per creation stack id (and head length): its creation lines' template. */
  readonly #created: (Template | undefined)[] = [];
  /** Per creation stack id (0: unknown) and head length: exit lines' template, up to the lifetime. */
  readonly #exited: (Template | undefined)[] = [];
  /** ` pid=N` and the line's end for one pid (`#pid`); the end alone when pids aren't shown. */
  #pid = -1;
  /** Labels after the pid (host-wide mode: the process's executable and container). */
  readonly #labels: (pid: number) => readonly (readonly [string, string])[];
  #pidEnd = new Uint8Array(0);
  /** Each process's line end, made once. */
  readonly #ends = new Map<number, Uint8Array<ArrayBuffer>>();

  /**
   * `showPid`: add `pid=` to each line (when gmon is not limited to one process). `enc`: the format; its
   * stacks' {@link StackEntry.attrBytes} must come from a StackTable with the same encoding. `labels`:
   * more attributes of a process, after its pid.
   */
  constructor(
    showPid: boolean,
    enc: Encoding = TEXT,
    labels: (pid: number) => readonly (readonly [string, string])[] = () => [],
  ) {
    this.#enc = enc;
    this.#showPid = showPid;
    this.#labels = labels;
    this.#truncated = enc.attr("stack_truncated", true);
  }

  /** `time=... level=INFO msg=runtime.newproc1 goroutine_id=N stack_id=S stack.0=...` */
  created(
    out: LineSink,
    epochMs: number,
    goid: number,
    stack: StackEntry,
    pid: number,
    truncated: boolean,
  ): void {
    const ms = Math.floor(epochMs);
    if (ms !== this.#ms) this.#setTime(ms);
    const key = truncated ? -1 - pid : pid;
    const n = digits(goid);
    const slot = stack.id * SLOTS + (this.#createdHead.length & (SLOTS - 1));
    let t = this.#created[slot];
    if (t === undefined || t.ms !== ms || t.digits !== n || t.key !== key) {
      t = this.#template(this.#createdHead, n, key, () => this.#createdTail(stack, pid, truncated), t);
      this.#created[slot] = t;
    }
    const b = out.room(t.bytes.length);
    const at = b.length;
    b.put(t.bytes);
    b.uintAt(at + t.headLength, goid, n);
  }

  /**
   * `time=... level=INFO msg=runtime.goexit1 goroutine_id=N stack_id=S stack.0=...`, then for a
   * goroutine seen created (`createdStackId` > 0) ` created_stack_id=C lifetime=1.503s` (in JSON the
   * lifetime is integer nanoseconds, as Go's JSONHandler writes a time.Duration).
   */
  exited(
    out: LineSink,
    epochMs: number,
    goid: number,
    stack: StackEntry,
    pid: number,
    createdStackId = 0,
    lifetimeNs = 0,
  ): void {
    const ms = Math.floor(epochMs);
    if (ms !== this.#ms) this.#setTime(ms);
    const n = digits(goid);
    const slot = createdStackId * SLOTS + (this.#exitedHead.length & (SLOTS - 1));
    let t = this.#exited[slot];
    if (t === undefined || t.ms !== ms || t.digits !== n || t.key !== stack.id) {
      t = this.#template(this.#exitedHead, n, stack.id, () => this.#exitedMiddle(stack, createdStackId), t);
      this.#exited[slot] = t;
    }
    if (pid !== this.#pid) this.#setPid(pid);
    const b = out.room(t.bytes.length + TAIL_ROOM + this.#pidEnd.length);
    const at = b.length;
    b.put(t.bytes);
    b.uintAt(at + t.headLength, goid, n);
    if (createdStackId > 0) this.#enc.appendDuration(b, lifetimeNs);
    b.put(this.#pidEnd);
  }

  /**
   * A template of `head`, room for `n` digits and `rest()`. `old`'s bytes are kept when only the
   * millisecond changed and the head's length did not (the text format's never does): the new head
   * is copied over its own.
   */
  #template(head: Head, n: number, key: number, rest: () => Uint8Array, old?: Template): Template {
    if (old !== undefined && old.key === key && old.digits === n && old.headLength === head.length) {
      head.copyTo(old.bytes);
      old.ms = this.#ms;
      return old;
    }
    const tail = rest();
    const bytes = new Uint8Array(head.length + n + tail.length);
    head.copyTo(bytes);
    bytes.set(tail, head.length + n);
    return { key, ms: this.#ms, digits: n, headLength: head.length, bytes };
  }

  #createdTail(stack: StackEntry, pid: number, truncated: boolean): Uint8Array {
    if (pid !== this.#pid) this.#setPid(pid);
    return concat(stack.attrBytes, utf8(truncated ? this.#truncated : ""), this.#pidEnd);
  }

  #exitedMiddle(stack: StackEntry, createdStackId: number): Uint8Array {
    const enc = this.#enc;
    const created = createdStackId > 0
      ? enc.key("created_stack_id") + createdStackId + enc.key("lifetime")
      : "";
    return concat(stack.attrBytes, utf8(created));
  }

  #setPid(pid: number): void {
    this.#pid = pid;
    let end = this.#ends.get(pid);
    if (end === undefined) {
      const enc = this.#enc;
      const labels = this.#labels(pid).map(([k, v]) => enc.attr(k, v)).join("");
      end = utf8((this.#showPid ? enc.key("pid") + pid : "") + labels + enc.end);
      // Bounded: the processes of a host, but pids are reused and labels change with an exec.
      if (this.#ends.size >= 1024) this.#ends.clear();
      this.#ends.set(pid, end);
    }
    this.#pidEnd = end;
  }

  /** A process's labels changed (it exec'd, or ended and its pid may come back). */
  forget(pid: number): void {
    this.#ends.delete(pid);
    if (pid === this.#pid) this.#pid = -1;
  }

  /** Events come in bursts within one millisecond: format each millisecond's heads once. */
  #setTime(ms: number): void {
    this.#ms = ms;
    const enc = this.#enc;
    const time = enc.time(ms);
    const goid = enc.key("goroutine_id");
    this.#createdHead.set(enc.head(time, "INFO", "runtime.newproc1") + goid);
    this.#exitedHead.set(enc.head(time, "INFO", "runtime.goexit1") + goid);
  }
}

/**
 * A line's head, re-encoded every millisecond into the same bytes: a new typed array costs ~0.7 us
 * here (its memory comes from the runtime's allocator), far more than encoding the head.
 */
class Head {
  bytes = new Uint8Array(256);
  length = 0;

  set(s: string): void {
    if (s.length * 3 > this.bytes.length) this.bytes = new Uint8Array(s.length * 3);
    this.length = UTF8.encodeInto(s, this.bytes).written;
  }

  /** Copies the head to the start of `to`. */
  copyTo(to: Uint8Array): void {
    const b = this.bytes;
    for (let i = 0; i < this.length; i++) to[i] = b[i];
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
