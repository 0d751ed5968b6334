/**
 * Facts about a Go executable, read by the Rust crate in `wasm/` compiled to WebAssembly: ELF
 * segments, the Go version, function entry offsets for uprobes, the goid offset in `runtime.g`
 * and DWARF symbolization (inlined calls expanded like `runtime.CallersFrames`).
 *
 * One WebAssembly instance serves one executable; its memory holds a copy of the ELF image.
 *
 * @module
 */

import { z } from "zod";
import defaultWasm from "../../build/gmon.wasm" with { type: "bytes" };

/** A PT_LOAD program header. */
export interface Segment {
  vaddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  /** p_flags: 1 = X, 2 = W, 4 = R. */
  flags: number;
}

/** What gmon needs to know about the executable before attaching. */
export interface TargetInfo {
  /** Always "x86_64": other machines are refused by {@link TargetImage.open}. */
  arch: string;
  /** ET_DYN: addresses are link-time and need the load bias added at run time. */
  pie: boolean;
  /** e.g. "go1.26.8", from .go.buildinfo; null when the binary carries none. */
  goVersion: string | null;
  hasDwarf: boolean;
  hasSymtab: boolean;
  /** Byte offset of `goid` in `runtime.g`, from DWARF; null without DWARF. */
  goidOffset: number | null;
  segments: Segment[];
}

/** A function symbol; `offset` is the file offset of its entry, as uprobe attachment wants. */
export interface FunctionSymbol {
  name: string;
  addr: number;
  size: number;
  offset: number;
}

/** One logical frame; "?" and 0 where unknown. */
export interface Frame {
  func: string;
  file: string;
  line: number;
}

interface Exports {
  memory: WebAssembly.Memory;
  gmon_alloc(len: number): number;
  gmon_free(ptr: number, len: number): void;
  gmon_open(ptr: number, len: number): number;
  gmon_info(): number;
  gmon_function(ptr: number, len: number): number;
  gmon_symbolize(ptr: number, n: number): number;
  gmon_result_ptr(): number;
  gmon_result_len(): number;
}

const EXPORT_NAMES = [
  "gmon_alloc",
  "gmon_free",
  "gmon_open",
  "gmon_info",
  "gmon_function",
  "gmon_symbolize",
  "gmon_result_ptr",
  "gmon_result_len",
] as const;

const count = z.number().int().nonnegative();

const InfoSchema = z.object({
  arch: z.string(),
  pie: z.boolean(),
  go_version: z.string().nullable(),
  has_dwarf: z.boolean(),
  has_symtab: z.boolean(),
  goid_offset: count.nullable(),
  segments: z.array(z.object({ vaddr: count, offset: count, filesz: count, memsz: count, flags: count })),
});

const FunctionSchema = z.object({ name: z.string(), addr: count, size: count, offset: count });

// Separators of the module's compact symbolize output.
const PC_SEP = "\x1e";
const FRAME_SEP = "\n";
const FIELD_SEP = "\t";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Compiling is the costly part of instantiation; the default module is compiled once per process.
let defaultModule: WebAssembly.Module | undefined;

function compile(wasm: Uint8Array | undefined): WebAssembly.Module {
  if (wasm !== undefined) return new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  defaultModule ??= new WebAssembly.Module(defaultWasm as Uint8Array<ArrayBuffer>);
  return defaultModule;
}

function bindExports(instance: WebAssembly.Instance): Exports {
  const e = instance.exports;
  if (!(e.memory instanceof WebAssembly.Memory)) throw new Error("gmon.wasm: no exported memory");
  for (const name of EXPORT_NAMES) {
    if (typeof e[name] !== "function") throw new Error(`gmon.wasm: missing export ${name}`);
  }
  return e as unknown as Exports;
}

/** An opened Go executable. Not thread-safe; one per target. */
export class TargetImage {
  readonly #wasm: Exports;
  /** Set once the module trapped: its state can no longer be trusted. */
  #broken: string | null = null;
  /** Scratch buffer for pcs, reused and grown across symbolize() calls. */
  #scratchPtr = 0;
  #scratchLen = 0;
  #info: TargetInfo | undefined;

  private constructor(wasm: Exports) {
    this.#wasm = wasm;
  }

  /**
   * Parses an x86-64 Go ELF executable.
   *
   * @param elf the whole file; it is copied into the module's memory.
   * @param wasm the module bytes; defaults to build/gmon.wasm (built by wasm/build.sh).
   * @throws Error with the module's one-line message, e.g. "not an ELF file",
   *   "ELF for aarch64, not x86-64", "not a Go program (...)", "truncated or malformed ELF: ...".
   */
  static open(elf: Uint8Array, wasm?: Uint8Array): TargetImage {
    const image = new TargetImage(bindExports(new WebAssembly.Instance(compile(wasm), {})));
    image.#call(() => {
      const ptr = image.#wasm.gmon_alloc(elf.length) >>> 0;
      new Uint8Array(image.#wasm.memory.buffer, ptr, elf.length).set(elf);
      // gmon_open owns the buffer from here on, including on failure.
      return image.#wasm.gmon_open(ptr, elf.length);
    });
    return image;
  }

  /** Header facts, segments, Go version and goid offset (parses DWARF on first call). */
  info(): TargetInfo {
    if (this.#info === undefined) {
      const raw = InfoSchema.parse(JSON.parse(this.#call(() => this.#wasm.gmon_info())));
      this.#info = {
        arch: raw.arch,
        pie: raw.pie,
        goVersion: raw.go_version,
        hasDwarf: raw.has_dwarf,
        hasSymtab: raw.has_symtab,
        goidOffset: raw.goid_offset,
        segments: raw.segments,
      };
    }
    return structuredClone(this.#info);
  }

  /**
   * Looks a function up by its exact Go symbol name (e.g. "runtime.newproc1").
   *
   * @throws Error("function NAME not found") when the symbol table lacks it.
   */
  func(name: string): FunctionSymbol {
    const bytes = encoder.encode(name);
    return FunctionSchema.parse(JSON.parse(this.#call(() => {
      const ptr = this.#wasm.gmon_alloc(bytes.length) >>> 0;
      try {
        new Uint8Array(this.#wasm.memory.buffer, ptr, bytes.length).set(bytes);
        return this.#wasm.gmon_function(ptr, bytes.length);
      } finally {
        this.#wasm.gmon_free(ptr, bytes.length);
      }
    })));
  }

  /**
   * Symbolizes link-time virtual addresses (PIE bias removed; return addresses already
   * decremented by the caller, as runtime.CallersFrames does).
   *
   * @returns one Frame[] per pc, innermost (possibly inlined) frame first; an unknown pc gives
   *   `[{ func: "?", file: "?", line: 0 }]`.
   */
  symbolize(pcs: readonly number[]): Frame[][] {
    if (pcs.length === 0) return [];
    for (const pc of pcs) {
      if (!Number.isSafeInteger(pc) || pc < 0) throw new RangeError(`symbolize: bad pc ${pc}`);
    }
    const text = this.#call(() => {
      const ptr = this.#scratch(pcs.length * 8);
      const view = new DataView(this.#wasm.memory.buffer, ptr, pcs.length * 8);
      pcs.forEach((pc, i) => view.setBigUint64(i * 8, BigInt(pc), true));
      return this.#wasm.gmon_symbolize(ptr, pcs.length);
    });
    const perPc = text.split(PC_SEP);
    if (perPc.length !== pcs.length) {
      throw new Error(`gmon.wasm: symbolize returned ${perPc.length} entries for ${pcs.length} pcs`);
    }
    return perPc.map((frames) =>
      frames.split(FRAME_SEP).map((frame) => {
        const [func, file, line] = frame.split(FIELD_SEP);
        return { func: func ?? "?", file: file ?? "?", line: Number(line ?? 0) || 0 };
      })
    );
  }

  /** A scratch allocation of at least `len` bytes, grown by doubling and never shrunk. */
  #scratch(len: number): number {
    if (len > this.#scratchLen) {
      const size = Math.max(len, this.#scratchLen * 2, 256);
      if (this.#scratchLen > 0) this.#wasm.gmon_free(this.#scratchPtr, this.#scratchLen);
      this.#scratchLen = 0;
      this.#scratchPtr = this.#wasm.gmon_alloc(size) >>> 0;
      this.#scratchLen = size;
    }
    return this.#scratchPtr;
  }

  /** Runs one ABI call and returns its result text, throwing its error text. */
  #call(fn: () => number): string {
    if (this.#broken !== null) {
      throw new Error(`gmon.wasm is unusable after an earlier trap: ${this.#broken}`);
    }
    let code: number;
    try {
      code = fn();
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        this.#broken = e.message;
        throw new Error(`gmon.wasm trapped: ${e.message}`);
      }
      throw e;
    }
    const ptr = this.#wasm.gmon_result_ptr() >>> 0;
    const len = this.#wasm.gmon_result_len() >>> 0;
    const text = decoder.decode(new Uint8Array(this.#wasm.memory.buffer, ptr, len));
    if (code !== 0) throw new Error(text);
    return text;
  }
}
