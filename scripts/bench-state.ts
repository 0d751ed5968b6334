/**
 * Benchmark of gmon's state: src/state/live.ts's bytes per live goroutine (after a GC, heap + typed
 * arrays + the drain core's WebAssembly memory) and creations/exits per second with a million goroutines live; and bytes per distinct
 * creation stack (scripts/bench-lib/stacks.ts), this checkout's beside --baseline's. Run through
 * scripts/bench-state.
 *
 * Usage: scripts/bench-state [N] [--only live,stacks] [--stacks S] [--runs R] [--baseline DIR]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LiveGoroutines } from "../src/state/live.ts";
import { type StacksMode, stacksSection, stacksWorker } from "./bench-lib/stacks.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc (scripts/bench-state does)");
const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    only: { type: "string", default: "live,stacks" },
    stacks: { type: "string", default: "131072" },
    runs: { type: "string", default: "3" },
    baseline: { type: "string" },
    // A stacks measure, in a process of its own.
    worker: { type: "string" },
    dir: { type: "string" },
  },
});
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const STACKS = Number(values.stacks);

if (values.worker !== undefined) {
  await stacksWorker(values.dir ?? root, values.worker as StacksMode, STACKS);
  Deno.exit(0);
}
const only = new Set(values.only.split(","));
if (only.has("live")) liveSection(Number(positionals[0] ?? 1_000_000));
if (only.has("stacks")) {
  const checkouts = [{ name: "this", dir: root }];
  if (values.baseline !== undefined) {
    checkouts.unshift({ name: "baseline", dir: values.baseline.replace(/\/$/, "") });
  }
  await stacksSection(new URL(import.meta.url).pathname, checkouts, STACKS, Number(values.runs));
}

function used(): number {
  gc!();
  gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

function liveSection(n: number): void {
  const stacks = 200;
  const before = used();
  const s = new LiveGoroutines((id) => `main.site${id % 40}`);
  let t = performance.now();
  for (let g = 1; g <= n; g++) s.create(4242, g, 1 + (g % stacks), g);
  const createMs = performance.now() - t;
  // The table is in the drain's core: its WebAssembly memory is neither heap nor external to V8.
  const core = (s as { core?: { x: { memory: WebAssembly.Memory } } }).core;
  const perLive = (used() + (core?.x.memory.buffer.byteLength ?? 0) - before) / n;
  console.log(`live goroutines: ${n}`);
  console.log(
    `bytes per live goroutine: ${perLive.toFixed(1)} (slabs and index: ${(s.slabBytes / n).toFixed(1)})`,
  );
  console.log(`create into an empty table: ${(n / createMs * 1e3 / 1e6).toFixed(2)} M/s`);

  // Steady state: n live, each event pair exits the oldest and creates a new one.
  const rounds = 2 * n;
  t = performance.now();
  for (let i = 0; i < rounds; i++) {
    s.exit(4242, i + 1, n + i);
    s.create(4242, n + i + 1, 1 + (i % stacks), n + i);
  }
  const churnMs = performance.now() - t;
  console.log(`exit + create with ${n} live: ${(2 * rounds / churnMs * 1e3 / 1e6).toFixed(2)} M events/s`);
}
