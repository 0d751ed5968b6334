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

/** The process is gone (or became a zombie) while being read. */
export class ProcessGone extends Error {
  constructor(pid: number) {
    super(`process ${pid} exited while being read`);
  }
}

/** Reads of one process's memory. */
export class ProcessMemory {
  readonly pid: number;
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
  readMany(reqs: readonly ReadRequest[], out: Uint8Array): boolean[] {
    const ok = new Array<boolean>(reqs.length).fill(false);
    // struct iovec {void *base; size_t len} pairs as 32-bit halves, built once for every request: the
    // calls then pass windows of them, so a request that fails costs one more call, not a rebuild.
    const local = new Uint32Array(reqs.length * 4);
    const remote = new Uint32Array(reqs.length * 4);
    const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(out as Uint8Array<ArrayBuffer>)));
    reqs.forEach((r, k) => {
      if (r.at < 0 || r.at + r.len > out.length) throw new RangeError(`read request outside the buffer`);
      setWord(local, k * 4, base + r.at);
      setWord(local, k * 4 + 2, r.len);
      setWord(remote, k * 4, r.addr);
      setWord(remote, k * 4 + 2, r.len);
    });
    let i = 0;
    while (i < reqs.length) {
      const count = Math.min(IOV_MAX, reqs.length - i);
      let got = this.#call(local.subarray(i * 4), remote.subarray(i * 4), count);
      // The kernel stops at the first range it can't read whole: count what it did, skip that one.
      let j = i;
      while (j < i + count && got >= reqs[j].len) {
        got -= reqs[j].len;
        ok[j] = true;
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
): { bytes: Uint8Array; at: Int32Array } {
  const order = Array.from(addrs.keys()).filter((i) => addrs[i] !== 0).sort((a, b) => addrs[a] - addrs[b]);
  const reqs: ReadRequest[] = [];
  const reqOf = new Int32Array(addrs.length).fill(-1);
  let total = 0;
  for (const i of order) {
    const a = addrs[i];
    const last = reqs[reqs.length - 1];
    if (last !== undefined && a - (last.addr + last.len) <= GATHER_GAP && a + len - last.addr <= GATHER_MAX) {
      const grown = Math.max(last.len, a + len - last.addr);
      total += grown - last.len;
      last.len = grown;
    } else {
      reqs.push({ addr: a, len, at: total });
      total += len;
    }
    reqOf[i] = reqs.length - 1;
  }
  const bytes = new Uint8Array(total);
  const ok = mem.readMany(reqs, bytes);
  const at = new Int32Array(addrs.length).fill(-1);
  for (const i of order) {
    const r = reqs[reqOf[i]];
    if (ok[reqOf[i]]) at[i] = r.at + (addrs[i] - r.addr);
  }
  return { bytes, at };
}
