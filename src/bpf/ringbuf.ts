/**
 * A reader of a BPF ring buffer straight from its mapped pages: no libbpf callback per record, no copy.
 * Kernel layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (ours to write); from page 1
 * the producer position, then the data area. The kernel lets the data area be mapped twice in a row so
 * that wrapping records read contiguously; gmon maps it once (RSS counts a double mapping twice) and
 * copies the rare record that wraps into a scratch buffer.
 *
 * @module
 */
import { c, errno, pageSize, strerror } from "./native.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;
const HEADER = 8;
/** Hand space back to the producer at least this often while draining a long backlog. */
const RELEASE_EVERY = 1 << 20;

/** Called for each record: `at` and `len` locate its payload in `view`, valid only during the call. */
export type RecordSink = (view: DataView, at: number, len: number) => void;

/** The mapped ring of one BPF_MAP_TYPE_RINGBUF map. */
export class RingReader {
  readonly #page: number;
  readonly #size: number;
  readonly #consumerPtr: Deno.PointerObject;
  readonly #producerPtr: Deno.PointerObject;
  readonly #consumer: BigUint64Array;
  readonly #producer: BigUint64Array;
  readonly #view: DataView;
  readonly #data: Uint8Array;
  readonly #words: Int32Array;
  /** Where a record that wraps around the end of the data area is put back together. */
  readonly #scratch = new Uint8Array(1 << 16);
  readonly #scratchView = new DataView(this.#scratch.buffer);
  #closed = false;

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
    this.#view = new DataView(data);
    this.#data = new Uint8Array(data);
    this.#words = new Int32Array(data);
  }

  /** Hands every committed record to `sink`, frees its space, and returns how many bytes it consumed. */
  drain(sink: RecordSink): number {
    if (this.#closed) return 0;
    const mask = this.#size - 1;
    let cons = Number(Atomics.load(this.#consumer, 0));
    const prod = Number(Atomics.load(this.#producer, 0));
    const start = cons;
    let released = cons;
    while (cons < prod) {
      const at = cons & mask;
      // The kernel clears BUSY only after the record's bytes are written. A plain read is an acquire
      // on x86-64 (the only architecture gmon's probes support), and V8 keeps typed-array reads in
      // program order; Atomics.load would be a builtin call per record (~7% of gmon's CPU at WARN).
      const hdr = this.#words[at >> 2] >>> 0;
      if (hdr & BUSY) break;
      const len = hdr & 0x3fff_ffff;
      if (!(hdr & DISCARD)) {
        // Headers are 8-byte aligned in a power-of-two area: only the payload can wrap.
        const start = (at + HEADER) & mask;
        if (start + len <= this.#size) sink(this.#view, start, len);
        else if (len <= this.#scratch.length) {
          const first = this.#size - start;
          this.#scratch.set(this.#data.subarray(start, this.#size));
          this.#scratch.set(this.#data.subarray(0, len - first), first);
          sink(this.#scratchView, 0, len);
        }
      }
      cons += (len + HEADER + 7) & ~7;
      if (cons - released >= RELEASE_EVERY) {
        Atomics.store(this.#consumer, 0, BigInt(cons));
        released = cons;
      }
    }
    if (cons !== released) Atomics.store(this.#consumer, 0, BigInt(cons));
    return cons - start;
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
