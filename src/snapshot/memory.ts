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
  // struct iovec {void *base; size_t len} pairs as 32-bit halves: no BigInt per request.
  readonly #remote = new Uint32Array(IOV_MAX * 4);
  readonly #local = new Uint32Array(IOV_MAX * 4);
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
    let i = 0;
    while (i < reqs.length) {
      const n = this.#batch(reqs, i, out);
      // The kernel stops at the first range it can't read whole: count what it did, skip that one.
      let got = n;
      let j = i;
      while (j < reqs.length && j - i < IOV_MAX && got >= reqs[j].len) {
        got -= reqs[j].len;
        ok[j] = true;
        j++;
      }
      i = j === i + Math.min(IOV_MAX, reqs.length - i) ? j : j + 1;
    }
    return ok;
  }

  /** Reads `len` bytes at `addr`; null when the process does not map them. */
  read(addr: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    return this.readMany([{ addr, len, at: 0 }], out)[0] ? out : null;
  }

  /** One process_vm_readv of up to IOV_MAX requests from `from` (contiguous in `out` or not). */
  #batch(reqs: readonly ReadRequest[], from: number, out: Uint8Array): number {
    const count = Math.min(IOV_MAX, reqs.length - from);
    // Local side: one iovec per request too, so that requests may land anywhere in `out`.
    const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(out as Uint8Array<ArrayBuffer>)));
    const local = this.#local;
    const remote = this.#remote;
    for (let k = 0; k < count; k++) {
      const r = reqs[from + k];
      if (r.at < 0 || r.at + r.len > out.length) throw new RangeError(`read request outside the buffer`);
      setWord(local, k * 4, base + r.at);
      setWord(local, k * 4 + 2, r.len);
      setWord(remote, k * 4, r.addr);
      setWord(remote, k * 4 + 2, r.len);
    }
    const n = Number(c().process_vm_readv(this.pid, local, BigInt(count), remote, BigInt(count), 0n));
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
