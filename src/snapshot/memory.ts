/**
 * Reads another process's memory with process_vm_readv: many ranges per system call, never stopping the
 * process (no ptrace attach). A range the process does not map (freed meanwhile, or a bad pointer read
 * from its memory) fails alone; the others are still read.
 *
 * @module
 */
import { c, errno, strerror } from "../bpf/native.ts";

/** The kernel takes at most IOV_MAX (1024) iovecs per call. */
const IOV_MAX = 1024;
const EFAULT = 14;
const ESRCH = 3;
const EPERM = 1;

/** One range to read: `len` bytes at `addr` in the process, into `out` at `at`. */
export interface ReadRequest {
  addr: number;
  len: number;
  at: number;
}

/**
 * Ranges to read (as {@link ReadRequest}s) in parallel arrays, reusable: for a hundred thousand
 * ranges a reading, no object each.
 */
export class Ranges {
  addr = new Float64Array(0);
  len = new Float64Array(0);
  at = new Float64Array(0);
  n = 0;

  /** Empties the list, with room for `capacity` ranges. */
  reset(capacity: number): this {
    if (this.addr.length < capacity) {
      this.addr = new Float64Array(capacity);
      this.len = new Float64Array(capacity);
      this.at = new Float64Array(capacity);
    }
    this.n = 0;
    return this;
  }

  add(addr: number, len: number, at: number): void {
    const k = this.n++;
    this.addr[k] = addr;
    this.len[k] = len;
    this.at[k] = at;
  }
}

/** The process is gone (or became a zombie) while being read. */
export class ProcessGone extends Error {
  constructor(pid: number) {
    super(`process ${pid} exited while being read`);
  }
}

/** Reads of one process's memory. */
export class ProcessMemory {
  readonly pid: number;
  /** The iovec arrays, reused from call to call. */
  readonly #local = new Scratch(Uint32Array);
  readonly #remote = new Scratch(Uint32Array);
  /** Bytes read by system calls so far (for benchmarks). */
  bytesRead = 0;
  calls = 0;

  constructor(pid: number) {
    this.pid = pid;
  }

  /**
   * Reads every request into `out`; returns, per request, whether all of its bytes were read.
   * Throws {@link ProcessGone} when the process no longer exists, and a one-line error when reading
   * is not permitted.
   */
  readMany(reqs: readonly ReadRequest[], out: Uint8Array): Uint8Array {
    const ranges = new Ranges().reset(reqs.length);
    for (const r of reqs) ranges.add(r.addr, r.len, r.at);
    return this.readRanges(ranges, out);
  }

  /** {@link ProcessMemory.readMany} of ranges held as parallel arrays (many, each read once). */
  readRanges(ranges: Ranges, out: Uint8Array): Uint8Array {
    const n = ranges.n;
    const ok = new Uint8Array(n);
    // struct iovec {void *base; size_t len} pairs as 32-bit halves, built once for every range: the
    // calls then pass windows of them, so a range that fails costs one more call, not a rebuild.
    const local = this.#local.take(n * 4);
    const remote = this.#remote.take(n * 4);
    const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(out as Uint8Array<ArrayBuffer>)));
    for (let k = 0; k < n; k++) {
      const at = ranges.at[k];
      const len = ranges.len[k];
      if (at < 0 || at + len > out.length) throw new RangeError(`read request outside the buffer`);
      setWord(local, k * 4, base + at);
      setWord(local, k * 4 + 2, len);
      setWord(remote, k * 4, ranges.addr[k]);
      setWord(remote, k * 4 + 2, len);
    }
    let i = 0;
    while (i < n) {
      const count = Math.min(IOV_MAX, n - i);
      let got = this.#call(local.subarray(i * 4), remote.subarray(i * 4), count);
      // The kernel stops at the first range it can't read whole: count what it did, skip that one.
      let j = i;
      while (j < i + count && got >= ranges.len[j]) {
        got -= ranges.len[j];
        ok[j] = 1;
        j++;
      }
      i = j === i + count ? j : j + 1;
    }
    return ok;
  }

  /** Reads `len` bytes at `addr`; null when the process does not map them. */
  read(addr: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    return this.readMany([{ addr, len, at: 0 }], out)[0] ? out : null;
  }

  /** One process_vm_readv of `count` iovecs; bytes read (0 when the first range is unmapped). */
  #call(local: Uint32Array, remote: Uint32Array, count: number): number {
    const n = Number(
      c().process_vm_readv(
        this.pid,
        local as Uint32Array<ArrayBuffer>,
        BigInt(count),
        remote as Uint32Array<ArrayBuffer>,
        BigInt(count),
        0n,
      ),
    );
    this.calls++;
    if (n >= 0) {
      this.bytesRead += n;
      return n;
    }
    const err = errno();
    if (err === EFAULT) return 0;
    if (err === ESRCH) throw new ProcessGone(this.pid);
    if (err === EPERM) {
      throw new Error(`reading process ${this.pid}'s memory: not permitted (needs CAP_SYS_PTRACE)`);
    }
    throw new Error(`reading process ${this.pid}'s memory: ${strerror(err)}`);
  }
}

/** Typed arrays this long and shorter are kept for reuse; a longer one is made for its one use. */
const KEEP_ELEMENTS = 4 << 20;

/**
 * A typed array reused from use to use (contents left as they were: every read overwrites what it
 * reports read): fresh megabytes per round would cost their page faults, zeroing and collection each
 * time. A use must be over before the next one takes it.
 */
export class Scratch<T extends Uint8Array<ArrayBuffer> | Uint32Array<ArrayBuffer>> {
  readonly #make: new (n: number) => T;
  #kept: T | null = null;

  constructor(make: new (n: number) => T) {
    this.#make = make;
  }

  /** `n` elements, from offset 0 of their buffer. */
  take(n: number): T {
    if (n > KEEP_ELEMENTS) return new this.#make(n);
    if (this.#kept === null || this.#kept.length < n) {
      this.#kept = new this.#make(Math.min(KEEP_ELEMENTS, Math.max(n, 2 * (this.#kept?.length ?? 0))));
    }
    return this.#kept.subarray(0, n) as T;
  }
}

/** Stores a non-negative safe integer as a little-endian 64-bit word at 32-bit index `i`. */
function setWord(words: Uint32Array, i: number, v: number): void {
  words[i] = v >>> 0;
  words[i + 1] = Math.floor(v / 0x1_0000_0000);
}

/** Ranges this close are read as one: the kernel's cost is per page touched far more than per byte. */
const GATHER_GAP = 4096;
/** Longest range read as one. */
const GATHER_MAX = 1 << 20;

/**
 * Reads `len` bytes at each of `addrs` (0 for none), neighbours read as one range: runtime structures
 * of one kind (gs, sudogs) sit side by side in the runtime's spans, several to a page. Returns the
 * bytes and, per address, where its bytes start in them (-1 when they could not be read).
 */
export function gather(
  mem: ProcessMemory,
  addrs: readonly number[],
  len: number,
  scratch?: Scratch<Uint8Array<ArrayBuffer>>,
): { bytes: Uint8Array; at: Int32Array } {
  const order = ascending(addrs);
  const reqs: ReadRequest[] = [];
  const reqOf = new Int32Array(addrs.length).fill(-1);
  let total = 0;
  // The open range, in locals: this loop runs for every g of every reading.
  let from = -Infinity;
  let end = -Infinity;
  for (const i of order) {
    const a = addrs[i];
    if (a - end <= GATHER_GAP && a + len - from <= GATHER_MAX) {
      const grown = Math.max(end, a + len);
      total += grown - end;
      end = grown;
      reqs[reqs.length - 1].len = end - from;
    } else {
      reqs.push({ addr: a, len, at: total });
      total += len;
      from = a;
      end = a + len;
    }
    reqOf[i] = reqs.length - 1;
  }
  const bytes = scratch?.take(total) ?? new Uint8Array(total);
  const ok = mem.readMany(reqs, bytes);
  const at = new Int32Array(addrs.length).fill(-1);
  for (const i of order) {
    const r = reqs[reqOf[i]];
    if (ok[reqOf[i]]) at[i] = r.at + (addrs[i] - r.addr);
  }
  return { bytes, at };
}

/**
 * Indices of the non-zero `addrs`, by address: the runtime mostly allocates gs in address order, so
 * the list is nearly sorted, and put in order by insertion (a few steps per out-of-place index).
 */
function ascending(addrs: readonly number[]): Int32Array {
  const order = new Int32Array(addrs.length);
  let n = 0;
  let steps = 0;
  for (let i = 0; i < addrs.length; i++) {
    const a = addrs[i];
    if (a === 0) continue;
    let k = n++;
    while (k > 0 && addrs[order[k - 1]] > a) {
      order[k] = order[k - 1];
      k--;
      // Far from sorted after all: a comparison sort of the rest is cheaper than moving on.
      if (++steps > INSERTION_STEPS) return sorted(addrs);
    }
    order[k] = i;
  }
  return order.subarray(0, n);
}

/** Moves of nearly sorted input worth doing before a sort takes over. */
const INSERTION_STEPS = 1 << 16;

function sorted(addrs: readonly number[]): Int32Array {
  const order: number[] = [];
  for (let i = 0; i < addrs.length; i++) if (addrs[i] !== 0) order.push(i);
  return Int32Array.from(order.sort((a, b) => addrs[a] - addrs[b]));
}
