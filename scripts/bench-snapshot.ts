/**
 * scripts/bench-snapshot: reading every goroutine of a running process from outside.
 *
 * For N parked goroutines (scripts/bench-app/parkmany: channel receive, select, mutex, sleep, at
 * several depths) it reports, per reading, the wall time (median of R, the first — cold: every pc
 * symbolized — apart), the bytes and system calls it took, and gmon's memory (heap after a GC, RSS);
 * then the target's own throughput (work units per 100 ms tick, each placed in time by the target's
 * clock) while nothing reads it, while gmon reads it back to back, and while gmon reads it once a
 * second (as a scrape would), interleaved, medians. Each N twice: just parked (many
 * goroutines not yet seen parked by a GC: their stacks are read at every reading), and once the
 * target's GC has run (as in any service that has run a while: a goroutine that has not run since
 * the last reading is not read again).
 *
 * Usage: scripts/bench-snapshot [--runs R] [--n 1000,100000]
 */
import { parseArgs } from "node:util";
import { TargetImage } from "../src/target/wasm.ts";
import { parseGoVersion } from "../src/target/goruntime.ts";
import { SnapshotReader } from "../src/snapshot/read.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "7" }, n: { type: "string", default: "1000,100000" } },
});
const RUNS = Number(values.runs);
/** The target's tick. */
const TICK_MS = 100;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const dec = new TextDecoder();

function build(): string {
  const out = `${Deno.makeTempDirSync({ prefix: "gmon-bench-" })}/parkmany`;
  const r = new Deno.Command("go", {
    args: ["build", "-o", out, "./parkmany"],
    cwd: `${root}/scripts/bench-app`,
  })
    .outputSync();
  if (r.code !== 0) throw new Error(`go build parkmany: ${dec.decode(r.stderr)}`);
  return out;
}

/** This process's CPU time (user + system), ms: what a reading costs gmon, whatever else runs. */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The target, started and parked; its tick counts arrive on `ticks`. */
async function start(bin: string, n: number, seconds: number, collected: boolean) {
  const child = new Deno.Command(bin, {
    args: ["-n", String(n), "-seconds", String(seconds), ...(collected ? ["-gc"] : [])],
    stdout: "piped",
  })
    .spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  const ticks: { at: number; units: number }[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const pump = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      rest += value;
      for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line === "ready") ready();
        else {
          const [at, units] = line.split(" ").map(Number);
          ticks.push({ at, units });
        }
      }
    }
  })();
  await isReady;
  return { child, ticks, done: async () => (await child.status, await pump) };
}

const bin = build();
const image = TargetImage.openFile(bin);
const uptime = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`bench-snapshot: ${RUNS} readings each, load average ${uptime}`);
const kinds = [{ collected: false, what: "just parked" }, { collected: true, what: "after the target's GC" }];
for (const n of values.n.split(",").map(Number)) {
  for (const { collected, what } of kinds) {
    const target = await start(bin, n, 60, collected);
    const reader = new SnapshotReader(image, parseGoVersion(image.info().goVersion!)!);
    gc();
    const heap0 = Deno.memoryUsage().heapUsed;
    const times: number[] = [];
    let t0 = performance.now();
    let last = await reader.read(target.child.pid, 0);
    const cold = performance.now() - t0;
    let peakHeap = 0;
    const c0 = cpuMs();
    for (let i = 0; i < RUNS; i++) {
      t0 = performance.now();
      last = await reader.read(target.child.pid, 0);
      times.push(performance.now() - t0);
      peakHeap = Math.max(peakHeap, Deno.memoryUsage().heapUsed - heap0);
    }
    const cpu = (cpuMs() - c0) / RUNS;
    console.log(
      `${n} goroutines ${what} (${last.goroutines.length} read): ${median(times).toFixed(1)} ms a reading, ` +
        `${cpu.toFixed(0)} ms of gmon's CPU (cold ${cold.toFixed(1)} ms), ` +
        `${(last.bytes / 1e6).toFixed(1)} MB in ${last.calls} calls, ` +
        `gmon heap +${(peakHeap / 1e6).toFixed(0)} MB, RSS ${(Deno.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );

    const t = await throughput(reader, target);
    console.log(
      `  target throughput: ${t.quiet} units/tick alone; read back to back ${t.busy} ` +
        `(${(t.busy / t.quiet * 100).toFixed(0)}%), read once a second ${t.paced} ` +
        `(${(t.paced / t.quiet * 100).toFixed(0)}%)`,
    );
    target.child.kill();
    await target.done();
  }
}

/**
 * The target's units per tick, medians, over windows of leaving it alone, of reading it back to back
 * and of reading it once a second, interleaved. Ticks are placed by the target's own clock: gmon's
 * event loop receives them late while it reads.
 */
async function throughput(
  reader: SnapshotReader,
  target: { child: Deno.ChildProcess; ticks: { at: number; units: number }[] },
): Promise<{ quiet: number; busy: number; paced: number }> {
  const windows: { kind: "quiet" | "busy" | "paced"; from: number; to: number }[] = [];
  for (let round = 0; round < 3; round++) {
    for (const kind of ["quiet", "busy", "quiet", "paced"] as const) {
      const from = Date.now();
      const seconds = kind === "paced" ? 3 : 2;
      for (let next = from; Date.now() - from < seconds * 1000;) {
        if (kind === "quiet" || Date.now() < next) await new Promise((r) => setTimeout(r, 20));
        else {
          await reader.read(target.child.pid, 0);
          if (kind === "paced") next += 1000;
          else await new Promise((r) => setTimeout(r, 0));
        }
      }
      windows.push({ kind, from, to: Date.now() });
    }
  }
  // Let the last ticks arrive.
  await new Promise((r) => setTimeout(r, 300));
  const of = (kind: string) =>
    median(
      target.ticks.filter((t) =>
        windows.some((w) => w.kind === kind && t.at - TICK_MS >= w.from && t.at <= w.to)
      ).map((t) => t.units),
    );
  return { quiet: of("quiet"), busy: of("busy"), paced: of("paced") };
}
