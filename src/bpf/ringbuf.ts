/**
 * A reader of a BPF ring buffer straight from its mapped pages: no libbpf callback per record; committed
 * records are handed on a chunk at a time, as the ring holds them. Kernel layout (kernel/bpf/ringbuf.c):
 * page 0 holds the consumer position (ours to write); from page 1 the producer position, then the data
 * area. The kernel lets the data area be mapped twice in a row so that wrapping records read
 * contiguously; gmon maps it once (RSS counts a double mapping twice) and hands a chunk that wraps as
 * its two pieces.
 *
 * @module
 */
import { c, errno, pageSize, strerror } from "./native.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const BUSY = 0x8000_0000;
/** A record's header in the ring (before its payload), and the header's length bits. */
export const RING_HEADER = 8;
export const RING_LENGTH = 0x3fff_ffff;
/** Hand space back to the producer at least this often while draining a long backlog. */
const RELEASE_EVERY = 1 << 20;
/** The ring is read ahead of its headers this far at a time (well inside a CPU's L2). */
const AHEAD_BYTES = 64 << 10;

/**
 * Called with committed records as the ring holds them (each an 8-byte header and its payload,
 * 8-aligned): `data[a, b)` then `data[c, d)` (the area's end and start when they wrap; else c = d).
 * Valid only during the call. Records whose header has the discard bit (0x40000000) are the sink's to
 * skip.
 */
export type ChunkSink = (data: Uint8Array, a: number, b: number, c: number, d: number) => void;

/** The mapped ring of one BPF_MAP_TYPE_RINGBUF map. */
export class RingReader {
  readonly #page: number;
  readonly #size: number;
  readonly #consumerPtr: Deno.PointerObject;
  readonly #producerPtr: Deno.PointerObject;
  readonly #consumer: BigUint64Array;
  readonly #producer: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #words: Int32Array;
  #closed = false;
  /** What the read-ahead read, kept so that the loads are not optimized away. */
  #ahead = 0;

  /** Maps the ring of map fd `fd`, whose max_entries (a power of two pages) is `size`. */
  constructor(fd: number, size: number) {
    this.#page = pageSize();
    this.#size = size;
    this.#consumerPtr = map(this.#page, PROT_READ | PROT_WRITE, fd, 0);
    try {
      this.#producerPtr = map(this.#page + size, PROT_READ, fd, this.#page);
    } catch (e) {
      c().munmap(this.#consumerPtr, BigInt(this.#page));
      throw e;
    }
    this.#consumer = new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(this.#consumerPtr, 8));
    this.#producer = new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(this.#producerPtr, 8));
    const data = Deno.UnsafePointerView.getArrayBuffer(this.#producerPtr, size, this.#page);
    this.#data = new Uint8Array(data);
    this.#words = new Int32Array(data);
  }

  /**
   * Hands the committed records to `sink` a chunk (of at most {@link RELEASE_EVERY} bytes, whole
   * records) at a time, freeing each chunk's space after it; returns how many bytes it consumed. Only
   * headers are read here: the payloads are the sink's to copy, after their headers said committed.
   */
  drainChunks(sink: ChunkSink): number {
    if (this.#closed) return 0;
    const mask = this.#size - 1;
    let cons = Number(Atomics.load(this.#consumer, 0));
    const prod = Number(Atomics.load(this.#producer, 0));
    const start = cons;
    let ahead = cons;
    for (;;) {
      let end = cons;
      let busy = false;
      while (end < prod && end - cons < RELEASE_EVERY) {
        if (end >= ahead) ahead = this.#readAhead(ahead, Math.min(prod, ahead + AHEAD_BYTES));
        // The kernel clears BUSY only after the record's bytes are written. A plain read is an acquire
        // on x86-64 (the only architecture gmon's probes support), and V8 keeps typed-array reads in
        // program order; Atomics.load would be a builtin call per record. The payloads are copied
        // after (a copy of the whole area could read a payload before the header that says it is
        // written).
        const hdr = this.#words[(end & mask) >> 2] >>> 0;
        if (hdr & BUSY) {
          busy = true;
          break;
        }
        end += ((hdr & RING_LENGTH) + RING_HEADER + 7) & ~7;
      }
      if (end === cons) break;
      const at = cons & mask;
      const n = end - cons;
      if (at + n <= this.#size) sink(this.#data, at, at + n, 0, 0);
      else sink(this.#data, at, this.#size, 0, n - (this.#size - at));
      cons = end;
      Atomics.store(this.#consumer, 0, BigInt(cons));
      if (busy || cons >= prod) break;
    }
    return cons - start;
  }

  /**
   * Reads a word of each cache line of `[from, to)`; returns `to`. The records were just written on
   * other CPUs: each header read alone is a cache miss that the next waits for (its position is in
   * it), ~20% of a busy drain; these loads depend on nothing, so the CPU overlaps their misses. Nothing
   * read here is used (a payload is read only after its header said committed).
   */
  #readAhead(from: number, to: number): number {
    const mask = this.#size - 1;
    const words = this.#words;
    let x = 0;
    for (let p = from; p < to; p += 64) x ^= words[(p & mask) >> 2];
    this.#ahead = x;
    return to;
  }

  /** Unmaps the ring; later drains read nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    c().munmap(this.#producerPtr, BigInt(this.#page + this.#size));
    c().munmap(this.#consumerPtr, BigInt(this.#page));
  }
}

function map(len: number, prot: number, fd: number, offset: number): Deno.PointerObject {
  const p = c().mmap(null, BigInt(len), prot, MAP_SHARED, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === 0xffff_ffff_ffff_ffffn) {
    const err = errno();
    throw new Error(`mmap of the ring buffer failed: ${strerror(err)}`);
  }
  return p;
}
