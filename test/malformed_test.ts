/**
 * Malformed input never crashes or hangs the WASM target reader: a few hundred mutated copies
 * (fixed seed) of real Go builds, default and stripped, each opened, asked info(), func() and
 * symbolize() on every symbol source. scripts/fuzz runs the same loop for longer.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildFixture } from "./harness.ts";
import { exercise, probeOf, regions, runCases } from "./mutate.ts";

const CASES = 500;
const SEED = 20261127;

function binaries(): Record<string, Uint8Array> {
  return {
    default: Deno.readFileSync(buildFixture("symbols")),
    "-s -w": Deno.readFileSync(buildFixture("symbols", ["-ldflags=-s -w"])),
    "pie -s -w": Deno.readFileSync(buildFixture("symbols", ["-buildmode=pie", "-ldflags=-s -w"])),
  };
}

Deno.test("mutated binaries: every operation succeeds or throws a one-line Error", () => {
  const t0 = performance.now();
  const summary = runCases(binaries(), CASES, SEED);
  const secs = (performance.now() - t0) / 1000;
  console.log(`${summary.cases} cases in ${secs.toFixed(1)} s, slowest ${summary.slowestMs.toFixed(0)} ms`);
  assertEquals(summary.failures, []);
  assert(summary.slowestMs < 5000, `a case took ${summary.slowestMs} ms`);
});

Deno.test("every truncation of the stripped build's headers and .gopclntab start is handled", () => {
  const elf = Deno.readFileSync(buildFixture("symbols", ["-ldflags=-s -w"]));
  const probe = probeOf(elf);
  const pcln = regions(elf).find((r) => r.name === ".gopclntab");
  assert(pcln, "a .gopclntab section");
  const cuts = [...Array(80).keys(), ...Array.from({ length: 100 }, (_, i) => pcln.start + i * 8)];
  for (const cut of cuts) {
    assertEquals(exercise(elf.slice(0, cut), probe, "pclntab"), null, `cut at ${cut}`);
  }
  // The table's header words, each set to all ones: counts and offsets past the end.
  for (let off = 0; off < 72; off += 4) {
    const bytes = elf.slice();
    bytes.fill(0xff, pcln.start + off, pcln.start + off + 4);
    assertEquals(exercise(bytes, probe, "pclntab"), null, `header word ${off}`);
  }
});
