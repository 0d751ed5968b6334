/**
 * Buffered output that never blocks gmon: lines are assembled as bytes in one buffer while a batch of
 * records drains, and written with one syscall per batch (or per MiB of a long one). What the reader
 * can't take yet (`gmon | less`, paused) waits in a bounded queue; beyond it, whole batches of lines are
 * dropped and counted, never the events themselves: gmon keeps draining, answering signals and letting
 * the traced program's execs through.
 *
 * @module
 */
import { ByteBuffer } from "./bytes.ts";

/** Where bytes go, without blocking. */
export interface Out {
  /**
   * Writes what it can of `p` now: the count written (less, even 0, when the reader is slow), or -1
   * once the reader has gone away (a broken pipe). Throws on a failure that may pass (a full disk).
   */
  write(p: Uint8Array): number;
  /** Waits up to `ms` for room to write; false when there is none yet. */
  wait?(ms: number): boolean;
}

/** A synchronous writer (a file, Deno.stdout) as an {@link Out}: it blocks until written. */
export function blockingOut(w: { writeSync(p: Uint8Array): number }): Out {
  return {
    write(p) {
      try {
        let off = 0;
        while (off < p.length) off += w.writeSync(p.subarray(off));
        return off;
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe) return -1;
        throw e;
      }
    },
  };
}

/**
 * Bigger writes cost the kernel less per byte (fewer page-cache calls) up to a few hundred KiB; the
 * buffer stays small enough to stay in the cache between the lines written in and the write out.
 */
const FLUSH_BYTES = 1 << 20;
/** A batch this big is written from where it is rather than copied into the buffer first. */
const DIRECT_BYTES = 64 << 10;
/** Lines a slow reader has not taken yet, at most: gmon's memory must not follow the reader's pauses. */
const QUEUE_BYTES = 16 << 20;
const NEWLINE = 10;

/** Collects lines and writes them in batches. */
export class LineWriter {
  readonly #out: Out;
  readonly #buf = new ByteBuffer(FLUSH_BYTES + (1 << 16));
  /** Batches the reader has not taken yet, oldest first; the first partly written up to #sent. */
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #sent = 0;
  /** Set when the reader went away (EPIPE): later writes are dropped. */
  closed = false;
  /** Lines dropped since {@link takeDropped} was last called, and in all. */
  #dropped = 0;
  droppedTotal = 0;
  /** The last write failure (a full disk), until a write succeeds again; said once. */
  failure: string | null = null;
  #failureSaid = false;

  constructor(out: Out) {
    this.#out = out;
  }

  /** The buffer, with room for `n` more bytes: what it holds is written out first if it is full. */
  room(n: number): ByteBuffer {
    const b = this.#buf;
    if (b.length + n > FLUSH_BYTES) this.flush();
    b.reserve(n);
    return b;
  }

  /**
   * Writes a batch of whole lines, `bytes` (valid only during the call), after what is buffered: a
   * small batch is copied in; a big one is written straight from where it is once what was before it
   * is out (a write call costs less than copying it), and copied only if the reader leaves some.
   */
  put(bytes: Uint8Array): void {
    if (bytes.length < DIRECT_BYTES) return this.room(bytes.length).put(bytes);
    this.flush();
    if (this.closed) return;
    const off = this.#queue.length === 0 ? this.#send(bytes) : 0;
    if (off < bytes.length && !this.closed) this.#keep(bytes.subarray(off));
  }

  /** Queues `line` (with its newline). */
  write(line: string): void {
    this.room(line.length * 3).text(line);
  }

  /** Writes what the reader takes now; keeps or drops (counted) the rest. Never blocks. */
  flush(): void {
    const b = this.#buf;
    if (b.length === 0 && this.#queue.length === 0) return;
    const bytes = b.view();
    if (this.closed) return b.clear();
    this.#sendQueued();
    let off = 0;
    if (this.#queue.length === 0 && !this.closed) off = this.#send(bytes);
    if (off < bytes.length && !this.closed) this.#keep(bytes.subarray(off));
    b.clear();
  }

  /** Waits up to `ms` for the reader to take what is queued (the end of a session); drops the rest. */
  finish(ms: number): void {
    this.flush();
    const until = Date.now() + ms;
    while (this.#queue.length > 0 && !this.closed && Date.now() < until) {
      this.#out.wait?.(Math.max(1, until - Date.now()));
      this.#sendQueued();
    }
    for (const q of this.#queue) this.#count(q);
    this.#queue.length = 0;
    this.#queued = 0;
  }

  /** Lines dropped since the last call (a slow reader, a failing file); 0 when none. */
  takeDropped(): number {
    const n = this.#dropped;
    this.#dropped = 0;
    return n;
  }

  /** The failure to report, once per failing spell. */
  takeFailure(): string | null {
    if (this.failure === null || this.#failureSaid) return null;
    this.#failureSaid = true;
    return this.failure;
  }

  #sendQueued(): void {
    while (this.#queue.length > 0 && !this.closed) {
      const head = this.#queue[0];
      const n = this.#send(head.subarray(this.#sent));
      this.#sent += n;
      if (this.#sent < head.length) return;
      this.#queue.shift();
      this.#queued -= head.length;
      this.#sent = 0;
    }
  }

  /** Writes `bytes` as far as the reader takes them now; returns how far. */
  #send(bytes: Uint8Array): number {
    let off = 0;
    try {
      while (off < bytes.length) {
        const n = this.#out.write(bytes.subarray(off));
        if (n < 0) {
          this.closed = true;
          return off;
        }
        if (n === 0) break;
        off += n;
      }
      // A spell of failures ends when a whole batch is taken again.
      if (this.failure !== null && off === bytes.length) [this.failure, this.#failureSaid] = [null, false];
    } catch (e) {
      this.failure = (e as Error).message;
    }
    return off;
  }

  /** Queues the unsent rest of a batch, or drops it (whole lines, counted) when the queue is full. */
  #keep(rest: Uint8Array): void {
    if (this.failure !== null || this.#queued + rest.length > QUEUE_BYTES) return this.#count(rest);
    this.#queue.push(rest.slice());
    this.#queued += rest.length;
  }

  #count(bytes: Uint8Array): void {
    let n = 0;
    for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) n++;
    this.#dropped += n;
    this.droppedTotal += n;
  }
}
