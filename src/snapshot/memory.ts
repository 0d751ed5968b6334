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
class Ranges {
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
 * How to read `len` bytes (or `len[i]`) at each of a list of addresses, neighbours as one range: runtime
 * structures of one kind (gs, sudogs, stacks) sit side by side in the runtime's spans, and the kernel's
 * cost is per range and per page far more than per byte. Made once for a list that does not change (a
 * process's gs never move), read as often as wanted.
 */
export class GatherPlan {
  readonly ranges = new Ranges();
  /** Bytes the ranges read. */
  readonly total: number;
  /** Per address: its range, and where its bytes start in what the ranges read (-1: address 0). */
  readonly #range: Int32Array;
  readonly #at: Int32Array;
  readonly #addr: Float64Array;
  readonly #len: Float64Array;
  /** Per address, where its bytes start in the last read's bytes, or -1 when they were not read. */
  readonly at: Int32Array;

  constructor(addrs: ArrayLike<number>, lens: number | ArrayLike<number>, gap = GATHER_GAP) {
    const order = ascending(addrs);
    this.#range = new Int32Array(addrs.length).fill(-1);
    this.#at = new Int32Array(addrs.length).fill(-1);
    this.at = new Int32Array(addrs.length);
    // Copied by index: from a plain array, `from` would go through its iterator.
    this.#addr = new Float64Array(addrs.length);
    this.#len = new Float64Array(addrs.length);
    for (let i = 0; i < addrs.length; i++) {
      this.#addr[i] = addrs[i];
      this.#len[i] = typeof lens === "number" ? lens : lens[i];
    }
    const r = this.ranges.reset(order.length);
    let total = 0;
    // The open range, in locals: this loop runs for every g of a process.
    let from = -Infinity;
    let end = -Infinity;
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      const a = addrs[i];
      const len = this.#len[i];
      if (a - end <= gap && a + len - from <= GATHER_MAX) {
        const grown = Math.max(end, a + len);
        total += grown - end;
        end = grown;
        r.len[r.n - 1] = end - from;
      } else {
        r.add(a, len, total);
        total += len;
        from = a;
        end = a + len;
      }
      this.#range[i] = r.n - 1;
      this.#at[i] = r.at[r.n - 1] + (a - r.addr[r.n - 1]);
    }
    this.total = total;
  }

  /**
   * Reads every range; fills {@link GatherPlan.at} and returns the bytes. A range that fails is read
   * again address by address (a page between two of them may not be mapped).
   */
  read(mem: ProcessMemory, scratch?: Scratch<Uint8Array<ArrayBuffer>>): Uint8Array {
    const bytes = scratch?.take(this.total) ?? new Uint8Array(this.total);
    const ok = mem.readRanges(this.ranges, bytes);
    let again: Ranges | null = null;
    for (let i = 0; i < this.at.length; i++) {
      const r = this.#range[i];
      this.at[i] = r >= 0 && ok[r] ? this.#at[i] : -1;
      if (r >= 0 && !ok[r]) {
        (again ??= new Ranges().reset(this.at.length)).add(this.#addr[i], this.#len[i], this.#at[i]);
      }
    }
    if (again !== null) this.#readAlone(mem, again, bytes);
    return bytes;
  }

  #readAlone(mem: ProcessMemory, again: Ranges, bytes: Uint8Array): void {
    const ok = mem.readRanges(again, bytes);
    for (let i = 0, k = 0; i < this.at.length; i++) {
      const r = this.#range[i];
      if (r < 0 || this.at[i] >= 0) continue;
      if (ok[k++]) this.at[i] = this.#at[i];
    }
  }
}

/**
 * Reads `len` bytes at each of `addrs` (0 for none), neighbours as one range (see {@link GatherPlan}).
 * Returns the bytes and, per address, where its bytes start in them (-1 when they could not be read).
 */
export function gather(
  mem: ProcessMemory,
  addrs: ArrayLike<number>,
  len: number,
  scratch?: Scratch<Uint8Array<ArrayBuffer>>,
): { bytes: Uint8Array; at: Int32Array } {
  const plan = new GatherPlan(addrs, len);
  return { bytes: plan.read(mem, scratch), at: plan.at };
}

/**
 * Indices of the non-zero `addrs`, by address. Each address (less the lowest) and its index are packed
 * into one number (offset * 2^bits + index) and sorted as numbers, natively: far cheaper than a sort
 * that calls back into a comparison per step. Addresses too far apart to pack exactly fall back to that.
 */
function ascending(addrs: ArrayLike<number>): Int32Array {
  let lo = Infinity;
  let hi = 0;
  for (let i = 0; i < addrs.length; i++) {
    const a = addrs[i];
    if (a !== 0 && a < lo) lo = a;
    if (a > hi) hi = a;
  }
  const scale = 2 ** Math.max(1, Math.ceil(Math.log2(addrs.length + 1)));
  if ((hi - lo) * scale + addrs.length > Number.MAX_SAFE_INTEGER) return sorted(addrs);
  const keys = new Float64Array(addrs.length);
  let n = 0;
  for (let i = 0; i < addrs.length; i++) if (addrs[i] !== 0) keys[n++] = (addrs[i] - lo) * scale + i;
  const order = new Int32Array(n);
  const packed = keys.subarray(0, n).sort();
  // The index is the key's low bits; `%` on doubles would be a call into the runtime per key.
  for (let k = 0; k < n; k++) order[k] = packed[k] - Math.floor(packed[k] / scale) * scale;
  return order;
}

function sorted(addrs: ArrayLike<number>): Int32Array {
  const order: number[] = [];
  for (let i = 0; i < addrs.length; i++) if (addrs[i] !== 0) order.push(i);
  return Int32Array.from(order.sort((a, b) => addrs[a] - addrs[b]));
}
