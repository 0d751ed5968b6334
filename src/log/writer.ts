/**
 * Buffered output of text lines: events are appended as strings while a batch of records drains and
 * written with one syscall per batch, through one reusable byte buffer.
 *
 * @module
 */

/** Something with a synchronous write, e.g. Deno.stdout or an open file. */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/** Collects lines and writes them in batches. */
export class LineWriter {
  readonly #out: SyncWriter;
  readonly #encoder = new TextEncoder();
  #parts: string[] = [];
  #pending = 0;
  #buf = new Uint8Array(1 << 16);
  /** Set when the reader went away (EPIPE): later writes are dropped. */
  closed = false;

  constructor(out: SyncWriter) {
    this.#out = out;
  }

  /** Queues `line` (with its newline); flushes once enough is queued. */
  write(line: string): void {
    this.#parts.push(line);
    this.#pending += line.length;
    if (this.#pending >= 1 << 16) this.flush();
  }

  /** Writes everything queued. A closed reader (broken pipe) marks the writer closed, not an error. */
  flush(): void {
    if (this.#parts.length === 0) return;
    const text = this.#parts.length === 1 ? this.#parts[0] : this.#parts.join("");
    this.#parts = [];
    this.#pending = 0;
    if (this.closed) return;
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    if (this.#buf.length < text.length * 3) this.#buf = new Uint8Array(text.length * 3);
    const { written } = this.#encoder.encodeInto(text, this.#buf);
    let off = 0;
    try {
      while (off < written) off += this.#out.writeSync(this.#buf.subarray(off, written));
    } catch (e) {
      if (e instanceof Deno.errors.BrokenPipe) {
        this.closed = true;
        return;
      }
      throw e;
    }
  }
}
