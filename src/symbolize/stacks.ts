/**
 * Creation stacks, interned: each distinct stack gets one id and is symbolized and encoded once, so an
 * event costs a hash of its PCs and a map lookup, whatever the stack's depth.
 *
 * @module
 */
import type { GoroutineRecord } from "../bpf/record.ts";
import { encodeAttr } from "../output/slog.ts";
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
  "runtime.newproc1",
  "runtime.systemstack",
  "runtime.systemstack_switch",
]);

/** A symbolized, encoded stack. */
export interface StackEntry {
  id: number;
  /** The frames, `func at file:line`, innermost first. */
  frames: string[];
  /** ` stack_id=N stack.0=... stack.K=...`, slog-encoded. */
  attrs: string;
}

/** Interns creation stacks from records and fixed stacks from PCs. */
export class StackTable {
  readonly #symbolize: Symbolizer;
  /** Raw stacks by hash of their PCs; collisions resolved by comparing the PCs. */
  readonly #byHash = new Map<number, { pcs: Float64Array; bias: number; entry: StackEntry }[]>();
  /** Distinct frame lists by their text: raw stacks that differ only in hidden frames share an id. */
  readonly #byText = new Map<string, StackEntry>();
  readonly #pcFrames = new Map<number, string[]>();
  readonly #entries: StackEntry[] = [];

  constructor(symbolize: Symbolizer) {
    this.#symbolize = symbolize;
  }

  /**
   * The stack of a creation record (return addresses, as the probe fires at newproc1's return), from a
   * process whose load bias is `bias` (0 unless PIE).
   */
  intern(rec: GoroutineRecord, bias: number): StackEntry {
    const n = rec.nframes;
    let h = Math.imul(0x811c9dc5 ^ n, 0x01000193) ^ (bias / 4096);
    for (let i = 0; i < n; i++) {
      const at = rec.framesAt + i * 8;
      h = Math.imul(h ^ rec.view.getUint32(at, true), 0x01000193);
      h = Math.imul(h ^ rec.view.getUint32(at + 4, true), 0x01000193);
    }
    let bucket = this.#byHash.get(h);
    if (bucket !== undefined) {
      outer: for (const cand of bucket) {
        if (cand.pcs.length !== n || cand.bias !== bias) continue;
        for (let i = 0; i < n; i++) if (cand.pcs[i] !== rec.frame(i)) continue outer;
        return cand.entry;
      }
    } else {
      bucket = [];
      this.#byHash.set(h, bucket);
    }
    const pcs = new Float64Array(n);
    for (let i = 0; i < n; i++) pcs[i] = rec.frame(i);
    const entry = this.#entryFor(this.#framesOf(pcs.map((pc) => pc - bias), true));
    bucket.push({ pcs, bias, entry });
    return entry;
  }

  /** A stack known up front, e.g. the exit probe's one frame at an exact (not return) address. */
  fixed(pcs: readonly number[]): StackEntry {
    return this.#entryFor(this.#framesOf(pcs, false));
  }

  /** Every stack interned so far, by id - 1. */
  get entries(): readonly StackEntry[] {
    return this.#entries;
  }

  #framesOf(pcs: ArrayLike<number>, returnAddresses: boolean): string[] {
    // A return address points after its call, maybe at the next line or function: look up pc-1, as
    // runtime.CallersFrames does.
    const keys = Array.from(pcs, (pc) => returnAddresses ? pc - 1 : pc);
    const missing = [...new Set(keys.filter((k) => !this.#pcFrames.has(k)))];
    if (missing.length > 0) {
      const frames = this.#symbolize(missing);
      missing.forEach((pc, i) => {
        this.#pcFrames.set(pc, (frames[i] ?? []).map((f) => `${f.func} at ${f.file}:${f.line}`));
      });
    }
    const out = keys.flatMap((k) => this.#pcFrames.get(k)!);
    let skip = 0;
    while (skip < out.length - 1 && PROBE_SITE_FRAMES.has(out[skip].slice(0, out[skip].indexOf(" at ")))) {
      skip++;
    }
    return out.slice(skip);
  }

  #entryFor(frames: string[]): StackEntry {
    const text = frames.join("\n");
    let entry = this.#byText.get(text);
    if (entry === undefined) {
      const id = this.#entries.length + 1;
      const attrs = encodeAttr("stack_id", id) + frames.map((f, i) => encodeAttr(`stack.${i}`, f)).join("");
      entry = { id, frames, attrs };
      this.#entries.push(entry);
      this.#byText.set(text, entry);
    }
    return entry;
  }
}
