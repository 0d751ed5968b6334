/**
 * scripts/bench: what gmon costs the program it watches, in one run (variants interleaved, medians;
 * the machine's load noted beside every figure). Sections, in order:
 *
 * - trap: ns per probe hit: the bare trap, gmon's program, its stack walk vs the kernel's; the
 *   programs' own run time as the kernel counts it (scripts/bench-lib/trap.ts);
 * - keepalive: the keep-alive HTTP server (two goroutines per request) under wrk: bare, the bare
 *   traps, gmon at INFO to a file, at WARN with the endpoint, as fractions of bare; gmon's CPU per
 *   event; the floor (scripts/bench-lib/keepalive.ts);
 * - consumer: gmon's record handling alone, events per CPU-second (scripts/bench-lib/consumer.ts);
 * - drain: bursts of 5N goroutines, right after gmon attached and once it is warm: gmon's CPU per
 *   event and lost events, INFO to a file (text and JSON) and WARN with the endpoint
 *   (scripts/bench-lib/drain.ts);
 * - spawn: N goroutines created in a loop: ns per goroutine bare, under gmon (every event logged to a
 *   file) and under the seed's design (uretprobe on runtime.newproc1, uprobe on runtime.goexit1's
 *   entry, 20-frame stacks, the kernel's stack walk), loaded by gmon's own loader;
 * - httpd: a Go HTTP server with a new connection (so a goroutine) per request, driven by a Go client.
 *
 * --baseline DIR adds another gmon checkout (set up) beside this one: its BPF object in trap, its gmon
 * in keepalive and drain. Before/after in one run.
 *
 * Usage: scripts/bench [--runs R] [--n N] [--seconds S] [--only trap,keepalive,...] [--baseline DIR]
 */
import { parseArgs } from "node:util";
import { consumerSection } from "./bench-lib/consumer.ts";
import { drainSection } from "./bench-lib/drain.ts";
import { GmonRun } from "./bench-lib/gmon.ts";
import { keepaliveSection } from "./bench-lib/keepalive.ts";
import { bpfVariant, InProcessProbes, seedSpecs } from "./bench-lib/probes.ts";
import { load, median } from "./bench-lib/proc.ts";
import { runSpawn, type SpawnResult } from "./bench-lib/spawn.ts";
import { trapSection } from "./bench-lib/trap.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    n: { type: "string", default: "200000" },
    seconds: { type: "string", default: "5" },
    only: { type: "string", default: "trap,keepalive,consumer,drain,spawn,httpd" },
    baseline: { type: "string" },
  },
});
const RUNS = Number(values.runs);
const ONLY = new Set(values.only.split(","));
const N = Number(values.n);
const BASELINE = values.baseline === undefined ? null : values.baseline.replace(/\/$/, "");
const tmp = Deno.makeTempDirSync({ prefix: "gmon-bench-" });

function build(name: string): string {
  const out = `${tmp}/${name}`;
  const r = new Deno.Command("go", {
    args: ["build", "-o", out, `./${name}`],
    cwd: `${root}/scripts/bench-app`,
  })
    .outputSync();
  if (r.code !== 0) throw new Error(`go build ${name}: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

const spawn = build("spawn");
const httpd = build("httpd");
const kaserver = build("kaserver");
const gmonBpf = bpfVariant(root, tmp, []);
const trapsBpf = bpfVariant(root, tmp, ["GMON_BENCH_NOP"]);
const seedBpf = bpfVariant(root, tmp, ["GMON_BENCH_KERNEL_WALK"]);
console.log(
  `gmon bench: ${Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1]}, ` +
    `${navigator.hardwareConcurrency} CPUs, kernel ${Deno.osRelease()}, ${new Date().toISOString()}, ` +
    `load ${load()}`,
);

let trapNs: number | null = null;
if (ONLY.has("trap")) trapNs = (await trapSection(root, tmp, spawn, RUNS, BASELINE)).trapNs;
if (ONLY.has("keepalive")) {
  await keepaliveSection(root, kaserver, trapsBpf, trapNs, tmp, RUNS, Number(values.seconds), BASELINE);
}
if (ONLY.has("consumer")) await consumerSection(gmonBpf, kaserver, tmp, RUNS);

if (ONLY.has("drain")) await drainSection(root, BASELINE, spawn, N * 5, RUNS, tmp);

/** bare / gmon / seed, interleaved: each run's measure (the app prints it) and loss. */
async function compare(name: string, bin: string, args: string[], unit: string) {
  const attach = {
    bare: () => null,
    gmon: () => GmonRun.start(root, bin, { level: "INFO" }, `${tmp}/gmon.log`),
    seed: (pid: number) => new InProcessProbes(seedBpf, bin, pid, seedSpecs(bin)),
  };
  const modes = Object.keys(attach) as (keyof typeof attach)[];
  const all: Record<string, SpawnResult[]> = Object.fromEntries(modes.map((m) => [m, []]));
  const load0 = load();
  for (let r = 0; r < RUNS; r++) {
    for (const m of modes) all[m].push(await runSpawn(bin, args, attach[m]));
  }
  const med = Object.fromEntries(modes.map((m) => [m, median(all[m].map((x) => x.value))]));
  console.log(`\n${name} (${RUNS} interleaved runs, medians; load ${load0} -> ${load()})`);
  for (const m of modes) {
    const extra = m === "bare" ? "" : `  lost ${all[m].reduce((a, x) => a + (x.lost ?? 0), 0)}`;
    console.log(`  ${m.padEnd(5)} ${med[m].toFixed(1).padStart(10)} ${unit}${extra}`);
  }
  return med;
}

if (ONLY.has("spawn")) {
  const s = await compare(`spawn: ${N} goroutines`, spawn, ["-n", String(N)], "ns/goroutine");
  const added = { gmon: s.gmon - s.bare, seed: s.seed - s.bare };
  const us = (ns: number) => `${(ns / 1000).toFixed(2)} us`;
  console.log(`  added per goroutine: gmon ${us(added.gmon)}, seed ${us(added.seed)}`);
  console.log(`  ratio gmon/seed added cost: ${(added.gmon / added.seed).toFixed(3)} (goal <= 0.25)`);
}

if (ONLY.has("httpd")) {
  const h = await compare(
    "httpd: 8 clients, new connection per request, 2 s",
    httpd,
    ["-c", "8", "-d", "2s"],
    "req/s",
  );
  console.log(
    `  gmon ${(h.gmon / h.bare * 100).toFixed(1)}% of bare, seed ${
      (h.seed / h.bare * 100).toFixed(1)
    }% of bare`,
  );
}
Deno.removeSync(tmp, { recursive: true });
