/**
 * What gmon remembers of a process from one reading to the next: its list of gs, how to read their
 * headers, and the goroutines that have not run since, with their stacks as read then.
 *
 * Not having run is proven by the runtime's own bookkeeping: a GC's mark phase sets g.waitsince (to
 * the GC's start time) on a parked goroutine whose waitsince is 0, and the scheduler's execute (the
 * only way back to running, but for coroutine switches) and exitsyscall set it to 0. So while a
 * goroutine's header reads as before, with the same non-zero waitsince, it has not run since and its
 * stack is as it was; a copy by the GC (shrinking) changes its bounds and saved sp. Goroutines parked
 * since the last GC (waitsince 0) and coroutines (resumed without execute) are always read.
 *
 * @module
 */
import type { Goroutine } from "./goroutine.ts";
import type { GOffsets } from "./layout.ts";
import { GatherPlan } from "./memory.ts";

/**
 * Goroutines remembered across processes (~100 bytes each, and the goroutine as read); past it, the
 * least recently read process is forgotten first (never the one being read).
 */
const MAX_REMEMBERED = 1 << 19;

/** One process's gs, by position in allgs (the runtime only appends to it; dead gs are reused in place). */
export class Known {
  readonly start: string;
  /** allgs as last read: its words, and the same as numbers. */
  #allgsWords = new Uint32Array(0);
  gps = new Float64Array(0);
  readonly #plans: GatherPlan[] = [];
  /** Per position, {@link KEY_WORDS} 32-bit words of its header as read when its stack was. */
  #keys = new Uint32Array(0);
  /**
   * Per position, the goroutine read with its stack, while it has not run since (kept as long as
   * #keys, every element set: an array with holes would be slow to index).
   */
  #kept: (Goroutine | undefined)[] = [];
  readonly #keyOffsets: Uint32Array;

  constructor(start: string, g: GOffsets) {
    this.start = start;
    this.#keyOffsets = keyOffsets(g);
  }

  /**
   * Takes allgs as just read (`words`: two per g): what was planned for gs that moved in it is
   * dropped (only a new process under the same pid could do that: the runtime never moves a g).
   */
  allgs(words: Uint32Array): Float64Array {
    const old = this.#allgsWords;
    let same = Math.min(old.length, words.length);
    for (let i = 0; i < same; i++) {
      if (old[i] !== words[i]) {
        same = i;
        break;
      }
    }
    const n = words.length >> 1;
    // The usual case, a process read again with no g added: nothing to copy or convert.
    if (same === old.length && words.length === old.length) return this.gps;
    const gps = new Float64Array(n);
    gps.set(this.gps.subarray(0, same >> 1));
    for (let i = same >> 1; i < n; i++) gps[i] = words[2 * i + 1] * 0x1_0000_0000 + words[2 * i];
    if (same < old.length) this.#forget(same >> 1);
    if (n > this.#kept.length) this.#grow(n);
    this.#allgsWords = words.slice();
    this.gps = gps;
    return gps;
  }

  /** How to read the headers of the gs at positions [from, from + n): planned once per chunk. */
  plan(from: number, n: number, chunk: number, len: number): GatherPlan {
    const k = from / chunk;
    let p = this.#plans[k];
    if (p === undefined || p.at.length !== n) {
      p = new GatherPlan(this.gps.subarray(from, from + n), len);
      this.#plans[k] = p;
    }
    return p;
  }

  /** The goroutine at `pos` as last read, if its header (`words` from 32-bit index `w`) shows it has not run since. */
  get(pos: number, words: Uint32Array, w: number): Goroutine | undefined {
    if (pos >= this.#kept.length) return undefined;
    const kept = this.#kept[pos];
    if (kept === undefined) return undefined;
    const k = pos * KEY_WORDS;
    const keys = this.#keys;
    const offs = this.#keyOffsets;
    for (let i = 0; i < offs.length; i++) if (keys[k + i] !== words[w + offs[i]]) return undefined;
    return kept;
  }

  /** Notes the header of the g at `pos` as first read (`words` from index `w`), before its stack is. */
  note(pos: number, words: Uint32Array, w: number): void {
    if ((pos + 1) * KEY_WORDS > this.#keys.length) this.#grow(pos + 1);
    const k = pos * KEY_WORDS;
    const offs = this.#keyOffsets;
    for (let i = 0; i < offs.length; i++) this.#keys[k + i] = words[w + offs[i]];
    this.#kept[pos] = undefined;
  }

  /**
   * Keeps `g`, read at `pos` with its stack, its header unchanged since {@link Known.note}: when a GC
   * had seen it parked, and it is no coroutine.
   */
  keep(pos: number, g: Goroutine): void {
    const k = pos * KEY_WORDS + WAITSINCE_KEY;
    const seen = this.#keys[k] !== 0 || this.#keys[k + 1] !== 0;
    if (seen && g.waitReason !== "coroutine") this.#kept[pos] = g;
  }

  #grow(n: number): void {
    const size = Math.max(n, 2 * this.#kept.length);
    const keys = new Uint32Array(size * KEY_WORDS);
    keys.set(this.#keys);
    this.#keys = keys;
    const kept = new Array<Goroutine | undefined>(size).fill(undefined);
    for (let i = 0; i < this.#kept.length; i++) kept[i] = this.#kept[i];
    this.#kept = kept;
  }

  #forget(from: number): void {
    this.#plans.length = 0;
    this.#kept.fill(undefined, from);
  }
}

/** The header's words compared: status; goid, waitsince, g.sched's and g.syscall's sp and pc, stack. */
function keyOffsets(g: GOffsets): Uint32Array {
  const words = [g.goid, g.waitsince, g.schedSp, g.schedPc, g.syscallsp, g.syscallpc, g.stackLo, g.stackHi]
    .flatMap((off) => [off >> 2, (off >> 2) + 1]);
  return Uint32Array.from([g.atomicstatus >> 2, ...words]);
}

/** Words of key per position: the header words compared. */
const KEY_WORDS = 17;
/** Where waitsince's two words are in a key. */
const WAITSINCE_KEY = 3;

/** Every process's {@link Known}, for one executable's reader. */
export class Settled {
  readonly #g: GOffsets;
  readonly #processes = new Map<number, Known>();

  constructor(g: GOffsets) {
    this.#g = g;
  }

  /**
   * What is known of process `pid` started at `start` (its start time: a new process under a reused
   * pid starts over), made the most recently read.
   */
  of(pid: number, start: string): Known {
    let p = this.#processes.get(pid);
    this.#processes.delete(pid);
    if (p === undefined || p.start !== start) p = new Known(start, this.#g);
    this.#processes.set(pid, p);
    let total = 0;
    for (const k of this.#processes.values()) total += k.gps.length;
    for (const [old, k] of this.#processes) {
      if (total <= MAX_REMEMBERED || old === pid) break;
      this.#processes.delete(old);
      total -= k.gps.length;
    }
    return p;
  }
}
