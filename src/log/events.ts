/**
 * The event lines: one slog line per goroutine creation and exit, in the seed's shape, in either
 * format (text or JSON) through one {@link Encoding}, assembled as bytes straight into the output.
 *
 * Copying bytes costs little, but each copy call costs ~40 ns whatever its size, so a line is one copy
 * of a template and a few numbers written into it. A template holds a line up to its first number,
 * that number's room, and what follows it, all pre-encoded: per creation stack (and process) for a
 * creation; per exit stack for an exit, with room for the created stack's id too (its lifetime and
 * pid follow). Templates are brought up to date when the millisecond changes (the time is in the
 * line's head) or the goid's digit count does, which is rare next to events. No string is made per
 * event, and no number crosses a call as a double (the runtime would box it, an allocation per line):
 * the time is set once per millisecond ({@link EventLines.at}), not passed with each line.
 *
 * Creation templates hold their stack's whole text: they are a cache of bounded size
 * ({@link TEMPLATE_BYTES}), indexed by the stacks' slots, not kept per stack.
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

/** Most bytes a lifetime takes, and the pid with the line's end. */
const TAIL_ROOM = 64;

/**
 * Bytes of creation templates kept (each holds a whole stack's text, ~2-4 KB at 30 frames), in chunks
 * of {@link CHUNK_BYTES}. Once full, all are dropped and the stacks in use make theirs again: ~1,000
 * stacks' worth or more, beyond the stacks of a program that create goroutines often, so that
 * dropping is rare and costs one template per hot stack, while a program of endless distinct stacks
 * never holds more than this.
 */
const TEMPLATE_BYTES = 4 << 20;
const CHUNK_BYTES = 256 << 10;

/**
 * Exit templates per exit stack: by the head's length (in JSON the time drops trailing zeros:
 * `.587Z`, `.58Z`, `.5Z`, `Z`), 8 ways, and the created stack id's digits, 0 (none) to 15.
 */
const EXIT_VARIANTS = 8 * 16;

/** A line up to the end of what is known before the event: `head` + goid's room + the rest. */
interface Template {
  /** The stack it is for: its slot may be another's later. */
  id: number;
  /**
   * A creation's: the pid's line end it has (by identity: a process's labels change when it execs,
   * then its end is made anew) and whether it says the stack was truncated. Empty for an exit's.
   */
  end: Uint8Array;
  truncated: boolean;
  /** The {@link EventLines} time generation its head says. */
  generation: number;
  /** The goid digits it has room for, right after the head. */
  digits: number;
  headLength: number;
  /** Where the stack's attributes end (a creation's, reused when its pid or truncation changes). */
  attrsEnd: number;
  bytes: Uint8Array;
  /** A creation's template for the same stack with another head length (JSON's). */
  next: Template | undefined;
}

/** Formats creations and exits; the caller decides whether INFO is enabled. */
export class EventLines {
  readonly #enc: Encoding;
  readonly #showPid: boolean;
  readonly #truncated: Uint8Array;
  readonly #createdKey: Uint8Array;
  readonly #lifetimeKey: Uint8Array;
  #ms = NaN;
  /** Counts the changes of #ms: templates compare it, a small integer, rather than the time. */
  #generation = 0;
  /** This millisecond's line starts, up to goroutine_id's value, for creations and exits. */
  readonly #createdHead = new Head();
  readonly #exitedHead = new Head();
  /** Per creation stack slot: its creation lines' templates, one per head length. */
  readonly #created: (Template | undefined)[] = [];
  /** Where creation templates' bytes are. */
  readonly #arena = new Arena(CHUNK_BYTES, TEMPLATE_BYTES / CHUNK_BYTES);
  /**
   * Per exit stack slot: {@link EXIT_VARIANTS} templates of its exit lines, up to the lifetime, with
   * room for the goid and the created stack id (written in as the goid is: an exit stack is one for
   * every goroutine, so a template per created stack would be one per stack).
   */
  readonly #exited = new Map<number, (Template | undefined)[]>();
  /** The last exit stack's slot and templates: exits have one stack per executable. */
  #lastExitSlot = -1;
  #lastExit: (Template | undefined)[] = [];
  /** ` pid=N` and the line's end for one pid (`#pid`); the end alone when pids aren't shown. */
  #pid = -1;
  /** Labels after the pid (host-wide mode: the process's executable and container). */
  readonly #labels: (pid: number) => readonly (readonly [string, string])[];
  #pidEnd = new Uint8Array(0);
  /** Each process's line end, made once. */
  readonly #ends = new Map<number, Uint8Array<ArrayBuffer>>();

  /**
   * `showPid`: add `pid=` to each line (when gmon is not limited to one process). `enc`: the format; its
   * stacks' {@link StackEntry.attrs} must come from a StackTable with the same encoding. `labels`: more
   * attributes of a process, after its pid.
   */
  constructor(
    showPid: boolean,
    enc: Encoding = TEXT,
    labels: (pid: number) => readonly (readonly [string, string])[] = () => [],
  ) {
    this.#enc = enc;
    this.#showPid = showPid;
    this.#labels = labels;
    this.#truncated = utf8(enc.attr("stack_truncated", true));
    this.#createdKey = utf8(enc.key("created_stack_id"));
    this.#lifetimeKey = utf8(enc.key("lifetime"));
  }

  /** The time of the lines that follow (epoch ms; a line says the millisecond it is in). */
  at(epochMs: number): void {
    const ms = Math.floor(epochMs);
    if (ms !== this.#ms) this.#setTime(ms);
  }

  /** `time=... level=INFO msg=runtime.newproc1 goroutine_id=N stack_id=S stack.0=...` */
  created(out: LineSink, goid: number, stack: StackEntry, pid: number, truncated: boolean): void {
    if (pid !== this.#pid) this.#setPid(pid);
    const n = digits(goid);
    const length = this.#createdHead.length;
    let t = this.#created[stack.slot];
    while (t !== undefined && t.headLength !== length) t = t.next;
    if (
      t === undefined || t.id !== stack.id || t.generation !== this.#generation || t.digits !== n ||
      t.end !== this.#pidEnd ||
      t.truncated !== truncated
    ) {
      t = this.#createdTemplate(stack, n, truncated);
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
    goid: number,
    stack: StackEntry,
    pid: number,
    createdStackId = 0,
    lifetimeNs = 0,
  ): void {
    const n = digits(goid);
    const c = createdStackId > 0 ? digits(createdStackId) : 0;
    const variant = ((this.#exitedHead.length & 7) << 4) | c;
    const t = this.#exitTemplate(stack, variant, n, c);
    if (pid !== this.#pid) this.#setPid(pid);
    const b = out.room(t.bytes.length + TAIL_ROOM + this.#pidEnd.length);
    const at = b.length;
    b.put(t.bytes);
    b.uintAt(at + t.headLength, goid, n);
    if (c > 0) {
      b.uintAt(at + t.bytes.length - this.#lifetimeKey.length - c, createdStackId, c);
      this.#enc.appendDuration(b, lifetimeNs);
    }
    b.put(this.#pidEnd);
  }

  /** The exit template of `stack` for `variant`, brought up to date. */
  #exitTemplate(stack: StackEntry, variant: number, n: number, c: number): Template {
    if (stack.slot !== this.#lastExitSlot) {
      let found = this.#exited.get(stack.slot);
      if (found === undefined) {
        found = new Array(EXIT_VARIANTS);
        this.#exited.set(stack.slot, found);
      }
      this.#lastExitSlot = stack.slot;
      this.#lastExit = found;
    }
    const variants = this.#lastExit;
    const t = variants[variant];
    if (t !== undefined && t.id === stack.id && t.digits === n) {
      return t.generation === this.#generation ? t : this.#retime(t, this.#exitedHead);
    }
    const attrs = stack.attrBytes;
    const created = c === 0 ? [] : [this.#createdKey, new Uint8Array(c), this.#lifetimeKey];
    const made = this.#template(stack.id, this.#exitedHead, n, attrs.length, [attrs, ...created]);
    variants[variant] = made;
    return made;
  }

  /**
   * A creation template for `stack` and this head: the one of its head length retimed, or made anew
   * (its attributes copied from another of its templates if it has one: encoding them is the cost).
   */
  #createdTemplate(stack: StackEntry, n: number, truncated: boolean): Template {
    const head = this.#createdHead;
    const at = this.#created[stack.slot];
    const first = at?.id === stack.id ? at : undefined;
    let same = first;
    while (same !== undefined && same.headLength !== head.length) same = same.next;
    if (
      same !== undefined && same.digits === n && same.end === this.#pidEnd && same.truncated === truncated
    ) {
      return this.#retime(same, head);
    }
    const tail = truncated ? this.#truncated : NOTHING;
    const { room, source } = this.#room(stack, first, head.length + n + tail.length + this.#pidEnd.length);
    const { bytes } = room;
    head.copyTo(bytes, room.at);
    let end = room.at + head.length + n;
    const attrs = source instanceof Uint8Array ? source : attrsOf(source);
    bytes.set(attrs, end);
    end += attrs.length;
    const attrsEnd = end - room.at;
    bytes.set(tail, end);
    bytes.set(this.#pidEnd, end + tail.length);
    end += tail.length + this.#pidEnd.length;
    // The stack's other templates stay, unless the arena was emptied to make room.
    const others = first === undefined || this.#created[stack.slot] !== first
      ? undefined
      : same === undefined
      ? first
      : without(first, same);
    const t: Template = {
      id: stack.id,
      end: this.#pidEnd,
      truncated,
      generation: this.#generation,
      digits: n,
      headLength: head.length,
      attrsEnd,
      bytes: this.#arena.take(room, end - room.at),
      next: others,
    };
    while (this.#created.length <= stack.slot) this.#created.push(undefined);
    this.#created[stack.slot] = t;
    return t;
  }

  /**
   * Room for a creation template of `stack`: `fixed` bytes and its attributes, copied from `from` (one
   * of its templates) or encoded anew. When the arena is full every creation template goes (the
   * attributes then come from the stack, not from them).
   */
  #room(
    stack: StackEntry,
    from: Template | undefined,
    fixed: number,
  ): { room: Room; source: Template | Uint8Array } {
    if (from !== undefined) {
      const room = this.#arena.room(fixed + attrsOf(from).length);
      if (room !== null) return { room, source: from };
    }
    const source = stack.attrBytes;
    let room = this.#arena.room(fixed + source.length);
    if (room === null) {
      this.#created.fill(undefined);
      this.#arena.reset();
      room = this.#arena.room(fixed + source.length)!;
    }
    return { room, source };
  }

  /** `t` with this millisecond's `head` (of the same length) copied over its own. */
  #retime(t: Template, head: Head): Template {
    head.copyTo(t.bytes);
    t.generation = this.#generation;
    return t;
  }

  /** An exit template: `head`, room for `n` digits, then `parts`, the first of `attrsLength` bytes. */
  #template(id: number, head: Head, n: number, attrsLength: number, parts: Uint8Array[]): Template {
    const bytes = new Uint8Array(parts.reduce((sum, p) => sum + p.length, head.length + n));
    head.copyTo(bytes);
    let at = head.length + n;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return {
      id,
      end: NOTHING,
      truncated: false,
      generation: this.#generation,
      digits: n,
      headLength: head.length,
      attrsEnd: head.length + n + attrsLength,
      bytes,
      next: undefined,
    };
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
    this.#generation++;
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

  /** Copies the head to `to[at]`. */
  copyTo(to: Uint8Array, at = 0): void {
    const b = this.bytes;
    for (let i = 0; i < this.length; i++) to[at + i] = b[i];
  }
}

const NOTHING = new Uint8Array(0);

/** The stack's attributes in template `t`. */
function attrsOf(t: Template): Uint8Array {
  return t.bytes.subarray(t.headLength + t.digits, t.attrsEnd);
}

/** Where bytes may be written: `bytes[at, ...)`. */
interface Room {
  bytes: Uint8Array;
  at: number;
}

/**
 * Bytes handed out from a few fixed chunks, all taken back at once: a new typed array costs
 * microseconds (its memory comes from the runtime's allocator, and counts towards its next GC), a view
 * of a chunk far less. What is larger than a chunk (a stack of huge frames) gets its own array.
 */
class Arena {
  readonly #chunkBytes: number;
  readonly #chunks: Uint8Array[] = [];
  readonly #max: number;
  #chunk = -1;
  #top = 0;

  constructor(chunkBytes: number, maxChunks: number) {
    this.#chunkBytes = chunkBytes;
    this.#max = maxChunks;
  }

  /** Room for `n` bytes, to {@link take} once written; null when every chunk is used. */
  room(n: number): Room | null {
    if (n > this.#chunkBytes) return { bytes: new Uint8Array(n), at: 0 };
    if (this.#chunk < 0 || this.#top + n > this.#chunkBytes) {
      if (this.#chunk + 1 === this.#max) return null;
      this.#chunk++;
      this.#top = 0;
      if (this.#chunk === this.#chunks.length) this.#chunks.push(new Uint8Array(this.#chunkBytes));
    }
    return { bytes: this.#chunks[this.#chunk], at: this.#top };
  }

  /** The `n` bytes written in `room`, taken. */
  take(room: Room, n: number): Uint8Array {
    if (room.bytes !== this.#chunks[this.#chunk]) return room.bytes.subarray(0, n);
    this.#top += n;
    return room.bytes.subarray(room.at, room.at + n);
  }

  /** Everything taken is free again (its holders must be gone). */
  reset(): void {
    this.#chunk = -1;
    this.#top = 0;
  }
}

/** The list from `first` without `t` (one of its templates). */
function without(first: Template, t: Template): Template | undefined {
  if (first === t) return t.next;
  let at = first;
  while (at.next !== t) at = at.next!;
  at.next = t.next;
  return first;
}
