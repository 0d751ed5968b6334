/**
 * scripts/bench's drain section: a burst of goroutines from the spawn program, twice under each gmon:
 * the first right after it attached (its JIT's warm-up, its tables' growth and the ring's first pass
 * are in it, as for a gmon attached in the middle of a burst) and the second once it has drained the
 * first (as for a gmon attached a while). For each: gmon's CPU from the burst's start until it is
 * idle again, its system time (at INFO mostly the log file's new page-cache pages), lost events;
 * at INFO, the kernel alone writing a burst's bytes to a new file, for the bound that sets.
 *
 * @module
 */
import { type GmonMode, GmonRun } from "./gmon.ts";
import { load, median, sleep, sysMs } from "./proc.ts";
import { runSpawn } from "./spawn.ts";

/** One burst's cost to gmon. */
interface Burst {
  gmonMs: number;
  sysMs: number;
}

/** Both bursts of one gmon, its totals and its peak RSS. */
interface Run {
  cold: Burst;
  warm: Burst;
  /** Events of one burst (gmon's count over both, halved; at WARN, what the program made less the lost). */
  events: number;
  lost: number;
  rssKb: number;
  /** Bytes gmon wrote a burst, and what the kernel alone takes to write as many to a new file. */
  logBytes: number;
  aloneSysMs: number;
}

/** Waits until gmon's CPU time stops moving (it has drained), at most 20 s. */
async function idle(gmon: GmonRun): Promise<void> {
  const end = Date.now() + 20_000;
  for (let before = -1; Date.now() < end;) {
    const now = gmon.cpuMs();
    // A tick (10 ms) in 200 ms: the idle polls, not a drain.
    if (before >= 0 && now - before <= 10) return;
    before = now;
    await sleep(200);
  }
}

/** A burst of `n` goroutines by a new process of `spawn`, gmon attached to its executable already. */
async function burst(gmon: GmonRun, spawn: string, n: number): Promise<Burst> {
  let [cpu0, sys0] = [0, 0];
  const out = { gmonMs: NaN, sysMs: NaN };
  await runSpawn(spawn, ["-n", String(n)], () => null, {}, {
    before: () => [cpu0, sys0] = [gmon.cpuMs(), gmon.sysMs()],
    after: async () => {
      await idle(gmon);
      [out.gmonMs, out.sysMs] = [gmon.cpuMs() - cpu0, gmon.sysMs() - sys0];
    },
  });
  return out;
}

async function twoBursts(checkout: string, mode: GmonMode, spawn: string, n: number, log: string) {
  const gmon = await GmonRun.start(checkout, spawn, mode, log);
  let stopped = false;
  try {
    const cold = await burst(gmon, spawn, n);
    const warm = await burst(gmon, spawn, n);
    const rssKb = gmon.rssPeakKb();
    const totals = await gmon.stop();
    stopped = true;
    const events = Number.isNaN(totals.events) ? 2 * n - totals.lost / 2 : totals.events / 2;
    const logBytes = Deno.statSync(log).size / 2;
    // As gmon's log was when it started: emptied, its pages free for the next file's.
    Deno.truncateSync(log);
    const aloneSysMs = mode.level === "INFO" ? writeAlone(`${log}.alone`, logBytes) : NaN;
    return { cold, warm, events, lost: totals.lost, rssKb, logBytes, aloneSysMs } satisfies Run;
  } finally {
    if (!stopped) await gmon.stop();
  }
}

/**
 * System ms this process takes to write `bytes` to a new file at `path` in 1 MiB writes: the kernel's
 * share of logging a burst with nothing else to it (its page cache), which bounds events per
 * CPU-second at INFO whatever gmon does.
 */
function writeAlone(path: string, bytes: number): number {
  const chunk = new Uint8Array(1 << 20).fill(0x61);
  const f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const sys0 = sysMs(Deno.pid);
  try {
    for (let left = Math.floor(bytes); left > 0;) {
      left -= f.writeSync(chunk.subarray(0, Math.min(left, chunk.length)));
    }
  } finally {
    f.close();
  }
  const ms = sysMs(Deno.pid) - sys0;
  Deno.removeSync(path);
  return ms;
}

/** The section: each mode of this checkout (and of `baseline`), `runs` interleaved runs, medians. */
export async function drainSection(
  root: string,
  baseline: string | null,
  spawn: string,
  n: number,
  runs: number,
  tmp: string,
): Promise<void> {
  const each: [string, GmonMode][] = [
    ["-level INFO, text to a file", { level: "INFO" }],
    ["-level INFO, JSON to a file", { level: "INFO", format: "json" }],
    ["-level WARN, endpoint on", { level: "WARN", endpoint: true }],
  ];
  const of = (checkout: string, prefix: string) =>
    each.map(([name, m]): [string, string, GmonMode] => [prefix + name, checkout, m]);
  const modes = [...of(root, ""), ...(baseline === null ? [] : of(baseline, "--baseline "))];
  const mode = (i: number) => modes[i][2];
  const load0 = load();
  const all = modes.map(() => [] as Run[]);
  for (let r = 0; r < runs; r++) {
    for (const [i, [, checkout, mode]] of modes.entries()) {
      all[i].push(await twoBursts(checkout, mode, spawn, n, `${tmp}/gmon.log`));
    }
  }
  console.log(
    `\ndrain: bursts of ${n} goroutines, the first right after gmon attached (cold), the second ` +
      `once it drained that (warm); ${runs} interleaved runs, medians; load ${load0} -> ${load()}`,
  );
  for (const [i, [name]] of modes.entries()) {
    const med = (f: (d: Run) => number) => median(all[i].map(f));
    const events = med((x) => x.events);
    const lost = all[i].map((x) => x.lost).join("/");
    console.log(
      `  ${name}: ${events} events a burst, lost ${lost}, peak RSS ${
        (med((x) => x.rssKb) / 1024).toFixed(0)
      } MiB`,
    );
    if (mode(i).level === "INFO") {
      const [mb, alone] = [med((x) => x.logBytes) / 1e6, med((x) => x.aloneSysMs)];
      console.log(
        `    the kernel alone writing a burst's ${mb.toFixed(0)} MB to a new file: ${alone} ms ` +
          `(at most ${(events / alone / 1000).toFixed(2)} M events per CPU-second, gmon costing nothing)`,
      );
    }
    for (const which of ["cold", "warm"] as const) {
      const [ms, sys] = [med((x) => x[which].gmonMs), med((x) => x[which].sysMs)];
      console.log(
        `    ${which}: gmon CPU ${ms} ms, ${(events / ms / 1000).toFixed(2)} M events per CPU-second ` +
          `(in the kernel ${sys} ms; ${(events / (ms - sys) / 1000).toFixed(2)} M per user-CPU-second)`,
      );
    }
  }
}
