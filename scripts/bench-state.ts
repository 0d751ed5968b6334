/**
 * Benchmark of src/state/live.ts: bytes per live goroutine (after a GC, heap + typed arrays) and
 * creations/exits per second, with a million goroutines live. Run through scripts/bench-state.
 *
 * @module
 */
import { LiveGoroutines } from "../src/state/live.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc (scripts/bench-state does)");
const N = Number(Deno.args[0] ?? 1_000_000);
const STACKS = 200;

function used(): number {
  gc!();
  gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

const before = used();
const s = new LiveGoroutines((id) => `main.site${id % 40}`);
let t = performance.now();
for (let g = 1; g <= N; g++) s.create(4242, g, 1 + (g % STACKS), g);
const createMs = performance.now() - t;
const perLive = (used() - before) / N;
console.log(`live goroutines: ${N}`);
console.log(
  `bytes per live goroutine: ${perLive.toFixed(1)} (slabs and index: ${(s.slabBytes / N).toFixed(1)})`,
);
console.log(`create into an empty table: ${(N / createMs * 1e3 / 1e6).toFixed(2)} M/s`);

// Steady state: N live, each event pair exits the oldest and creates a new one.
const ROUNDS = 2 * N;
t = performance.now();
for (let i = 0; i < ROUNDS; i++) {
  s.exit(4242, i + 1, N + i);
  s.create(4242, N + i + 1, 1 + (i % STACKS), N + i);
}
const churnMs = performance.now() - t;
console.log(`exit + create with ${N} live: ${(2 * ROUNDS / churnMs * 1e3 / 1e6).toFixed(2)} M events/s`);
