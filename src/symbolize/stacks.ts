/**
 * Creation stacks, interned: each distinct stack gets one id and is symbolized and encoded once, so an
 * event costs a hash of its PCs and a map lookup, whatever the stack's depth.
 *
 * @module
 */
import type { GoroutineRecord } from "../bpf/record.ts";
import { utf8 } from "../log/bytes.ts";
import { type Encoding, TEXT } from "../log/slog.ts";
import type { Frame } from "../target/wasm.ts";

/** Symbolizes PCs (file addresses, already adjusted): one Frame[] per PC, innermost first. */
export type Symbolizer = (pcs: readonly number[]) => Frame[][];

/**
 * Frames that come from where the creation probe sits rather than from the program: the systemstack
 * switch newproc makes to create the goroutine. Hidden from the top of creation stacks so that they
 * start at runtime.newproc, as Go's own "created by" does.
 */
const PROBE_SITE_FRAMES: ReadonlySet<string> = new Set([
  "runtime.newproc.func1",
  "runtime.newcoro.func1",
  "runtime.debugCallWrap.func1",
  "runtime.synctestRun.func2",
  "runtime.newproc1",
  "runtime.systemstack",
  "runtime.systemstack_switch",
]);

/** Slots of StackTable's cache of recently interned stacks. */
const RECENT = 64;

/** A stack as the ring gives it: its PCs as 32-bit words, and the process's load bias. */
interface RawStack {
  words: Uint32Array;
  bias: number;
  entry: StackEntry;
}

/** Whether `words` are the `n` frames at `from` in `w`. */
function same(words: Uint32Array, w: Uint32Array, from: number, n: number): boolean {
  if (words.length !== 2 * n) return false;
  for (let i = 0; i < 2 * n; i++) if (words[i] !== w[from + i]) return false;
  return true;
}

/** A symbolized, encoded stack. */
export interface StackEntry {
  id: number;
  /** The frames, `func at file:line`, innermost first. */
  frames: string[];
  /**
   * The physical frames behind {@link StackEntry.frames}: each one's address (in the file, as looked up:
   * a return address less one) and how many of the frames, inlined calls first, it stands for.
   */
  pcs: { addr: number; frames: number }[];
  /**
   * The stack's attributes, encoded once in the table's format: `stack_id` then the frames as
   * `slog.Group("stack", "0", f0, "1", f1, ...)`: ` stack_id=N stack.0="..." stack.K="..."` in text,
   * `,"stack_id":N,"stack":{"0":"...","K":"..."}` in JSON (no `stack` at all when there are no frames).
   */
  attrs: string;
  /** {@link StackEntry.attrs} as UTF-8, what lines are assembled from. */
  attrBytes: Uint8Array;
}

/**
 * Stack ids shared by the stack tables of several executables (one per executable: their PCs mean
 * different things), so that an id names one stack whichever table made it.
 */
export class StackRegistry {
  readonly #entries: StackEntry[] = [];

  /** The entry made by `make` under the next id. */
  add(make: (id: number) => StackEntry): StackEntry {
    const entry = make(this.#entries.length + 1);
    this.#entries.push(entry);
    return entry;
  }

  /** The stack with this id. */
  get(id: number): StackEntry | undefined {
    return this.#entries[id - 1];
  }

  /** Every stack so far, by id - 1. */
  get entries(): readonly StackEntry[] {
    return this.#entries;
  }
}

/** Interns creation stacks from records and fixed stacks from PCs. */
export class StackTable {
  readonly #symbolize: Symbolizer;
  readonly #enc: Encoding;
  /** Raw stacks by hash of their PCs; collisions resolved by comparing the PCs. */
  readonly #byHash = new Map<number, RawStack[]>();
  readonly #recent: (RawStack | undefined)[] = new Array(RECENT);
  /** Distinct frame lists by their text: raw stacks that differ only in hidden frames share an id. */
  readonly #byText = new Map<string, StackEntry>();
  readonly #pcFrames = new Map<number, string[]>();
  readonly #registry: StackRegistry;

  /**
   * `enc`: the format {@link StackEntry.attrs} are encoded in (that of the event lines); `registry`:
   * where ids come from, shared with the other executables' tables.
   */
  constructor(symbolize: Symbolizer, enc: Encoding = TEXT, registry: StackRegistry = new StackRegistry()) {
    this.#symbolize = symbolize;
    this.#enc = enc;
    this.#registry = registry;
  }

  /**
   * The stack of a creation record from a process whose load bias is `bias` (0 unless PIE). Frames
   * are return addresses, but for the first when `firstExact` (a probe on an instruction, not a return).
   */
  intern(rec: GoroutineRecord, bias: number, firstExact: boolean): StackEntry {
    const n = rec.nframes;
    const w = rec.words;
    const from = rec.framesWord;
    const end = from + 2 * n;
    // A few stacks make most creations: a small cache, by the first frames' low words, answers them
    // without hashing the whole stack.
    const slot = (n > 3 ? w[from + 4] ^ (w[from + 6] << 1) ^ n : n) & (RECENT - 1);
    const recent = this.#recent[slot];
    if (recent !== undefined && recent.bias === bias && same(recent.words, w, from, n)) return recent.entry;
    let h = Math.imul(0x811c9dc5 ^ n, 0x01000193) ^ (bias / 4096);
    for (let i = from; i < end; i++) h = Math.imul(h ^ w[i], 0x01000193);
    let bucket = this.#byHash.get(h);
    if (bucket !== undefined) {
      for (const cand of bucket) {
        if (cand.bias !== bias || !same(cand.words, w, from, n)) continue;
        this.#recent[slot] = cand;
        return cand.entry;
      }
    } else {
      bucket = [];
      this.#byHash.set(h, bucket);
    }
    const words = w.slice(from, end);
    const pcs = Array.from({ length: n }, (_, i) => rec.frame(i) - bias);
    const entry = this.#entryFor(this.#framesOf(pcs, firstExact ? 1 : 0));
    const raw = { words, bias, entry };
    bucket.push(raw);
    this.#recent[slot] = raw;
    return entry;
  }

  /**
   * The creation stack of a goroutine gmon did not see created (alive when it attached): just its go
   * statement, from g.gopc (a file address: the return address of the call that created it).
   */
  created(gopc: number): StackEntry {
    return this.#entryFor(this.#framesOf(gopc === 0 ? [] : [gopc], 0));
  }

  /** A stack known up front, e.g. the exit probe's one frame at an exact (not return) address. */
  fixed(pcs: readonly number[]): StackEntry {
    return this.#entryFor(this.#framesOf(pcs, pcs.length));
  }

  /** Every stack interned so far (by any table sharing the registry), by id - 1. */
  get entries(): readonly StackEntry[] {
    return this.#registry.entries;
  }

  /** Frames of `pcs`, of which the first `exact` are instruction addresses and the rest returns. */
  #framesOf(pcs: ArrayLike<number>, exact: number): Pick<StackEntry, "frames" | "pcs"> {
    // A return address points after its call, maybe at the next line or function: look up pc-1, as
    // runtime.CallersFrames does.
    const keys = Array.from(pcs, (pc, i) => i < exact ? pc : pc - 1);
    const missing = [...new Set(keys.filter((k) => !this.#pcFrames.has(k)))];
    if (missing.length > 0) {
      const frames = this.#symbolize(missing);
      missing.forEach((pc, i) => {
        // Compiler-made wrappers (`<autogenerated>:1`) are left out, as runtime.CallersFrames leaves them.
        this.#pcFrames.set(
          pc,
          (frames[i] ?? []).filter((f) => !f.wrapper).map((f) => `${f.func} at ${f.file}:${f.line}`),
        );
      });
    }
    const out = keys.flatMap((k) => this.#pcFrames.get(k)!);
    let skip = 0;
    while (skip < out.length - 1 && PROBE_SITE_FRAMES.has(out[skip].slice(0, out[skip].indexOf(" at ")))) {
      skip++;
    }
    // The physical frames left once the hidden ones are skipped (which may cut into the first).
    const physical: StackEntry["pcs"] = [];
    let seen = 0;
    for (const k of keys) {
      const n = this.#pcFrames.get(k)!.length;
      const kept = Math.min(n, seen + n - skip);
      if (kept > 0) physical.push({ addr: k, frames: kept });
      seen += n;
    }
    return { frames: out.slice(skip), pcs: physical };
  }

  #entryFor({ frames, pcs }: Pick<StackEntry, "frames" | "pcs">): StackEntry {
    const text = frames.join("\n");
    let entry = this.#byText.get(text);
    if (entry === undefined) {
      entry = this.#registry.add((id) => {
        const attrs = this.#enc.attr("stack_id", id) +
          this.#enc.group("stack", frames.map((f, i) => [String(i), f] as const));
        return { id, frames, pcs, attrs, attrBytes: utf8(attrs) };
      });
      this.#byText.set(text, entry);
    }
    return entry;
  }
}
