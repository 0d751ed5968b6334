/**
 * scripts/bench's trap section: what one probe hit costs the traced thread. The spawn program runs
 * on one thread (GOMAXPROCS=1, waiting every 100 goroutines), so its CPU time per goroutine is its
 * own work plus its two hits (a creation, an exit) one after the other:
 *
 * - bare; the bare trap (programs that return at once: the floor of a uprobe on an emulated
 *   instruction); gmon's program capturing one frame (no walk); with the kernel's stack walk
 *   (bpf_get_stack, as gmon had it); gmon's own walk; the seed's design (its placements: a return
 *   probe on newproc1 and goexit1's entry, single-stepped; the kernel's walk, 20 frames); and, given
 *   --baseline, that checkout's object at gmon's placements.
 * - at two depths: main's stack (5 frames) and the bottom of a 40-deep recursion (46 frames);
 * - then, with the kernel counting (bpf_stats), each variant's programs' own run time per run.
 *
 * @module
 */
import { bpfVariant, gmonSpecs, InProcessProbes, seedSpecs, withBpfStats } from "./probes.ts";
import { load, median } from "./proc.ts";
import { runSpawn } from "./spawn.ts";

export interface TrapCosts {
  /** ns per hit of the bare trap (the floor of this design). */
  trapNs: number;
}

interface Variant {
  name: string;
  bytes: Uint8Array<ArrayBuffer> | null;
  maxFrames?: number;
  /** The seed's placements rather than gmon's. */
  seed?: boolean;
}

export async function trapSection(
  root: string,
  tmp: string,
  spawn: string,
  runs: number,
  baseline: string | null,
): Promise<TrapCosts> {
  const gmon = bpfVariant(root, tmp, []);
  const kernelWalk = bpfVariant(root, tmp, ["GMON_BENCH_KERNEL_WALK"]);
  const variants: Variant[] = [
    { name: "bare", bytes: null },
    { name: "trap only (programs return at once)", bytes: bpfVariant(root, tmp, ["GMON_BENCH_NOP"]) },
    { name: "record, 1 frame (no walk)", bytes: gmon, maxFrames: 1 },
    { name: "kernel walk (bpf_get_stack)", bytes: kernelWalk },
    { name: "gmon's walk", bytes: gmon },
    { name: "the seed's design", bytes: kernelWalk, seed: true },
  ];
  if (baseline !== null) {
    variants.push({ name: "--baseline's object", bytes: Deno.readFileSync(`${baseline}/build/gmon.bpf.o`) });
  }
  const n = 100_000;
  let trapNs = NaN;
  for (const depth of [0, 40]) {
    const load0 = load();
    const all = variants.map(() => [] as number[]);
    for (let r = 0; r < runs; r++) {
      for (const [i, v] of variants.entries()) {
        all[i].push((await spawnUnder(v, spawn, n, depth)).value);
      }
    }
    const med = all.map(median);
    const programNs = await programPass(variants, spawn, depth, runs);
    console.log(
      `\ntrap: CPU ns per goroutine (a creation hit + an exit hit), ${n} goroutines, stack from ` +
        `${depth === 0 ? "main (5 frames)" : `a ${depth}-deep recursion (${depth + 6} frames)`}; ` +
        `${runs} interleaved runs, medians; load ${load0} -> ${load()}`,
    );
    for (const [i, v] of variants.entries()) {
      const perHit = i === 0 ? "" : `  ${((med[i] - med[0]) / 2).toFixed(0).padStart(6)} ns per hit`;
      const walk = i < 3 || v.seed
        ? ""
        : `  walk ${(med[i] - med[2]).toFixed(0).padStart(5)} ns per creation`;
      const program = i === 0 ? "" : `  program ${programNs[i].toFixed(0).padStart(5)} ns per run`;
      console.log(`  ${v.name.padEnd(36)} ${med[i].toFixed(0).padStart(7)} ns${perHit}${walk}${program}`);
    }
    const at = (name: string) => med[variants.findIndex((v) => v.name === name)];
    console.log(
      `  gmon / the seed's design, CPU added per goroutine: ` +
        `${((at("gmon's walk") - med[0]) / (at("the seed's design") - med[0])).toFixed(3)} (goal <= 0.25)`,
    );
    if (depth === 0) trapNs = (med[1] - med[0]) / 2;
  }
  return { trapNs };
}

/** `n` goroutines on one thread, from a recursion `depth` deep, under variant `v`'s probes. */
function spawnUnder(v: Variant, spawn: string, n: number, depth: number) {
  return runSpawn(
    spawn,
    ["-n", String(n), "-batch", "100", "-cpu", "-depth", String(depth)],
    (pid) =>
      v.bytes === null
        ? null
        : new InProcessProbes(v.bytes, spawn, pid, v.seed ? seedSpecs(spawn) : gmonSpecs(spawn, v.maxFrames)),
    { GOMAXPROCS: "1" },
  );
}

/**
 * The programs' own run time per run, as the kernel counts it (bpf_stats): a pass of its own, as
 * the counting itself costs each run two clock reads. Medians per variant (NaN for bare).
 */
async function programPass(variants: Variant[], spawn: string, depth: number, runs: number) {
  const all = variants.map(() => [] as number[]);
  await withBpfStats(async () => {
    for (let r = 0; r < runs; r++) {
      for (const [i, v] of variants.entries()) {
        const res = await spawnUnder(v, spawn, 20_000, depth);
        all[i].push((res.programNs ?? NaN) / (res.programRuns ?? NaN));
      }
    }
  });
  return all.map(median);
}
