/**
 * Buffered output: lines are assembled as bytes in one buffer while a batch of records drains, and
 * written with one syscall per batch (or per MiB of a long one).
 *
 * @module
 */
import { ByteBuffer } from "./bytes.ts";

/** Something with a synchronous write, e.g. Deno.stdout or an open file. */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/**
 * Bigger writes cost the kernel less per byte (fewer page-cache calls) up to a few hundred KiB; the
 * buffer stays small enough to stay in the cache between the lines written in and the write out.
 */
const FLUSH_BYTES = 1 << 20;

/** Collects lines and writes them in batches. */
export class LineWriter {
  readonly #out: SyncWriter;
  readonly #buf = new ByteBuffer(FLUSH_BYTES + (1 << 16));
  /** Set when the reader went away (EPIPE): later writes are dropped. */
  closed = false;

  constructor(out: SyncWriter) {
    this.#out = out;
  }

  /** The buffer, with room for `n` more bytes: what it holds is written out first if it is full. */
  room(n: number): ByteBuffer {
    const b = this.#buf;
    if (b.length + n > FLUSH_BYTES) this.flush();
    b.reserve(n);
    return b;
  }

  /** Queues `line` (with its newline). */
  write(line: string): void {
    this.room(line.length * 3).text(line);
  }

  /** Writes everything queued. A closed reader (broken pipe) marks the writer closed, not an error. */
  flush(): void {
    const b = this.#buf;
    if (b.length === 0) return;
    const bytes = b.view();
    b.clear();
    if (this.closed) return;
    let off = 0;
    try {
      while (off < bytes.length) off += this.#out.writeSync(bytes.subarray(off));
    } catch (e) {
      if (e instanceof Deno.errors.BrokenPipe) {
        this.closed = true;
        return;
      }
      throw e;
    }
  }
}
