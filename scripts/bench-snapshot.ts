/**
 * scripts/bench-snapshot: reading every goroutine of a running process from outside.
 *
 * For N parked goroutines (scripts/bench-app/parkmany: channel receive, select, mutex, sleep, at
 * several depths) it reports, per reading, the wall time (median of R, the first — cold: every pc
 * symbolized — apart), the bytes and system calls it took, and gmon's memory (heap after a GC, RSS);
 * then the target's own throughput (work units per 100 ms tick) while nothing reads it and while gmon
 * reads it back to back, interleaved second by second, medians.
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
/** While reading back to back, the event loop polls the target's output this often (tick: 100 ms). */
const POLL_MS = 50;
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
async function start(bin: string, n: number, seconds: number) {
  const child = new Deno.Command(bin, {
    args: ["-n", String(n), "-seconds", String(seconds)],
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
        else ticks.push({ at: performance.now(), units: Number(line) });
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
for (const n of values.n.split(",").map(Number)) {
  const target = await start(bin, n, 60);
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
    `${n} goroutines (${last.goroutines.length} read): ${median(times).toFixed(1)} ms a reading, ` +
      `${cpu.toFixed(0)} ms of gmon's CPU (cold ${cold.toFixed(1)} ms), ` +
      `${(last.bytes / 1e6).toFixed(1)} MB in ${last.calls} calls, ` +
      `gmon heap +${(peakHeap / 1e6).toFixed(0)} MB, RSS ${(Deno.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );

  // The target's throughput: alternate seconds of reading back to back and of leaving it alone.
  const quiet: number[] = [];
  const read: number[] = [];
  for (let s = 0; s < 8; s++) {
    const reading = s % 2 === 1;
    const from = performance.now();
    let polled = from;
    while (performance.now() - from < 1000) {
      if (reading) await reader.read(target.child.pid, 0);
      else await new Promise((r) => setTimeout(r, 50));
      // A small reading never waits on a timer: without this the ticks would be received (and
      // stamped) only after the second of readings, none of them in it.
      if (performance.now() - polled >= POLL_MS) {
        await new Promise((r) => setTimeout(r, 0));
        polled = performance.now();
      }
    }
    const got = target.ticks.filter((t) => t.at > from + 150 && t.at <= performance.now()).map((t) =>
      t.units
    );
    (reading ? read : quiet).push(...got);
  }
  console.log(
    `  target throughput: ${median(quiet)} units/tick alone, ${median(read)} while read back to back ` +
      `(${(median(read) / median(quiet) * 100).toFixed(0)}%)`,
  );
  target.child.kill();
  await target.done();
}
