/**
 * Malformed-input checks for the WASM target reader: mutated copies of real Go binaries
 * (truncations, bit flips and overwritten words in the ELF header, program and section headers,
 * .gopclntab and .debug_* bytes), made by a fixed-seed PRNG. Opening, info(), func() and
 * symbolize() on each must succeed or throw an Error with a one-line message: never a WASM
 * trap, never a hang.
 *
 * Used by test/malformed_test.ts (a few hundred cases) and by scripts/fuzz (as many as asked):
 *
 * ```sh
 * deno run --allow-all test/mutate.ts 10000 [seed]
 * ```
 *
 * @module
 */

import { type SymbolSource, TargetImage } from "../src/target/wasm.ts";

/** A deterministic 32-bit PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A file range of the ELF worth corrupting. */
export interface Region {
  name: string;
  start: number;
  end: number;
}

/** The ELF header, program headers, section headers, .gopclntab and .debug_* sections of `elf`. */
export function regions(elf: Uint8Array): Region[] {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const out: Region[] = [{ name: "ELF header", start: 0, end: 64 }];
  const phoff = Number(v.getBigUint64(32, true));
  const shoff = Number(v.getBigUint64(40, true));
  const phnum = v.getUint16(56, true);
  const shnum = v.getUint16(60, true);
  const shstrndx = v.getUint16(62, true);
  out.push({ name: "program headers", start: phoff, end: phoff + phnum * 56 });
  if (shoff === 0 || shnum === 0) return out;
  out.push({ name: "section headers", start: shoff, end: shoff + shnum * 64 });
  const sh = (i: number) => shoff + i * 64;
  const strOff = Number(v.getBigUint64(sh(shstrndx) + 24, true));
  const name = (off: number) => {
    let end = strOff + off;
    while (elf[end] !== 0) end++;
    return new TextDecoder().decode(elf.subarray(strOff + off, end));
  };
  for (let i = 0; i < shnum; i++) {
    const n = name(v.getUint32(sh(i), true));
    if (n.endsWith("gopclntab") || n.startsWith(".debug_") || n.startsWith(".zdebug_")) {
      const start = Number(v.getBigUint64(sh(i) + 24, true));
      const size = Number(v.getBigUint64(sh(i) + 32, true));
      out.push({ name: n, start, end: start + size });
    }
  }
  return out;
}

/** One mutated copy and what was done to it. */
export interface Case {
  what: string;
  bytes: Uint8Array;
}

/** A mutated copy of `elf`, chosen by `rand`. */
export function mutate(elf: Uint8Array, regs: Region[], rand: () => number): Case {
  const pick = (n: number) => Math.floor(rand() * n);
  const kind = pick(4);
  if (kind === 0) {
    // Truncation, biased toward the interesting regions' edges.
    const r = regs[pick(regs.length)];
    const cut = rand() < 0.5 ? pick(elf.length) : r.start + pick(Math.max(1, r.end - r.start));
    return { what: `truncated at ${cut} (in ${r.name})`, bytes: elf.slice(0, cut) };
  }
  const r = regs[pick(regs.length)];
  const bytes = elf.slice();
  const span = Math.max(1, Math.min(r.end, bytes.length) - r.start);
  const edits: string[] = [];
  const n = 1 + pick(8);
  for (let i = 0; i < n; i++) {
    const at = r.start + pick(span);
    if (at >= bytes.length) continue;
    if (kind === 1) {
      const bit = pick(8);
      bytes[at] ^= 1 << bit;
      edits.push(`bit ${bit} of ${at}`);
    } else if (kind === 2) {
      // A count or offset word set to something huge or negative.
      const word = [0xff, 0x7f, 0x80, 0x00][pick(4)];
      bytes.fill(word, at, Math.min(at + 4, bytes.length));
      edits.push(`word ${at}=${word.toString(16)}x4`);
    } else {
      bytes[at] = pick(256);
      edits.push(`byte ${at}`);
    }
  }
  return { what: `${r.name}: ${edits.join(", ")}`, bytes };
}

/** What a reference (unmutated) binary is asked: function names and pcs. */
export interface Probe {
  names: string[];
  pcs: number[];
}

/** Names and pcs to ask about, taken from the clean binary. */
export function probeOf(elf: Uint8Array): Probe {
  const image = TargetImage.open(elf);
  const names = ["main.outer", "runtime.newproc1", "runtime.goexit1", "main.main"];
  const pcs: number[] = [0, 2 ** 40];
  for (const name of names) {
    const f = image.func(name);
    for (const d of [0, 1, 7, f.size >> 1, f.size - 1]) pcs.push(f.addr + d);
  }
  return { names, pcs };
}

const SOURCES: SymbolSource[] = ["auto", "pclntab", "dwarf"];

/**
 * Runs every operation on `bytes`; returns null when each one succeeded or threw an Error with
 * a one-line message, else what went wrong.
 */
export function exercise(bytes: Uint8Array, probe: Probe, source: SymbolSource): string | null {
  const check = (op: string, e: unknown): string | null => {
    if (!(e instanceof Error)) return `${op}: threw a non-Error ${String(e)}`;
    const m = e.message;
    if (m.includes("trapped") || m.includes("unusable")) return `${op}: ${m}`;
    if (m.length === 0 || m.includes("\n")) return `${op}: not a one-line message: ${JSON.stringify(m)}`;
    return null;
  };
  let image: TargetImage;
  try {
    image = TargetImage.open(bytes, { source });
  } catch (e) {
    return check("open", e);
  }
  const ops: [string, () => unknown][] = [
    ["info", () => image.info()],
    ...probe.names.map((n): [string, () => unknown] => [`func ${n}`, () => image.func(n)]),
    ["symbolize", () => image.symbolize(probe.pcs)],
  ];
  for (const [op, fn] of ops) {
    try {
      fn();
    } catch (e) {
      const problem = check(op, e);
      if (problem !== null) return problem;
    }
  }
  return null;
}

/** One failed case: what was mutated and what went wrong. */
export interface Failure {
  binary: string;
  what: string;
  problem: string;
}

/** Outcome of {@link runCases}. */
export interface Summary {
  cases: number;
  failures: Failure[];
  /** The slowest case in ms (a hang shows as the run never ending). */
  slowestMs: number;
}

/**
 * Runs `n` mutated cases over `binaries` (name -> bytes) from `seed`, cycling the symbol source;
 * `onCase` sees each case's index and time.
 */
export function runCases(
  binaries: Record<string, Uint8Array>,
  n: number,
  seed: number,
  onCase?: (i: number, ms: number, failure: Failure | null) => void,
): Summary {
  const rand = prng(seed);
  const inputs = Object.entries(binaries).map(([name, elf]) => ({
    name,
    elf,
    regs: regions(elf),
    probe: probeOf(elf),
  }));
  const failures: Failure[] = [];
  let slowestMs = 0;
  for (let i = 0; i < n; i++) {
    const input = inputs[i % inputs.length];
    const c = mutate(input.elf, input.regs, rand);
    const source = SOURCES[Math.floor(i / inputs.length) % SOURCES.length];
    const t0 = performance.now();
    const problem = exercise(c.bytes, input.probe, source);
    const ms = performance.now() - t0;
    slowestMs = Math.max(slowestMs, ms);
    const failure = problem === null ? null : { binary: input.name, what: `${c.what} [${source}]`, problem };
    if (failure) failures.push(failure);
    onCase?.(i, ms, failure);
  }
  return { cases: n, failures, slowestMs };
}

function buildSymbols(flags: string[]): Uint8Array {
  const dir = new URL("./fixtures/symbols/", import.meta.url).pathname;
  const out = Deno.makeTempFileSync({ prefix: "gmon-fuzz-" });
  const r = new Deno.Command("go", { args: ["build", ...flags, "-o", out, "."], cwd: dir }).outputSync();
  if (r.code !== 0) throw new Error(`go build: ${new TextDecoder().decode(r.stderr)}`);
  const bytes = Deno.readFileSync(out);
  Deno.removeSync(out);
  return bytes;
}

/** The fuzz binaries: the symbols fixture, default, stripped and stripped PIE. */
export function fuzzBinaries(): Record<string, Uint8Array> {
  return {
    default: buildSymbols([]),
    "-s -w": buildSymbols(["-ldflags=-s -w"]),
    "pie -s -w": buildSymbols(["-buildmode=pie", "-ldflags=-s -w"]),
  };
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 1000);
  const seed = Number(Deno.args[1] ?? Date.now() % 2 ** 31);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(seed)) {
    console.error("usage: mutate.ts ITERATIONS [SEED]");
    Deno.exit(2);
  }
  console.log(`fuzz: ${n} cases, seed ${seed}`);
  const t0 = performance.now();
  const summary = runCases(fuzzBinaries(), n, seed, (i, ms, failure) => {
    if (failure) console.log(`CRASH case ${i} (${failure.binary}) ${failure.what}: ${failure.problem}`);
    if (ms > 2000) console.log(`SLOW case ${i}: ${ms.toFixed(0)} ms`);
    if ((i + 1) % 500 === 0) console.log(`fuzz: ${i + 1}/${n}`);
  });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `fuzz: ${summary.cases} cases in ${secs} s, slowest ${summary.slowestMs.toFixed(0)} ms, ` +
      `${summary.failures.length} crashes (seed ${seed})`,
  );
  Deno.exit(summary.failures.length === 0 ? 0 : 1);
}
