/**
 * `gmon -dump goroutine|goroutineleak`: read the goroutines of running processes from outside and print
 * them as Go's own debug=2 dump does, then exit. Nothing is attached; the processes never stop.
 *
 * @module
 */
import { monotonicNs } from "./bpf/native.ts";
import type { Options } from "./cli.ts";
import type { LineWriter } from "./log/writer.ts";
import { refuseOverwrite } from "./log/output.ts";
import { LeakWatch } from "./snapshot/leak.ts";
import { judge } from "./snapshot/source.ts";
import { type Snapshot, SnapshotReader } from "./snapshot/read.ts";
import { formatGoroutine } from "./snapshot/traceback.ts";
import { fileIdentity, LoadBiases } from "./symbolize/bias.ts";
import { checkProcess, checkUserProcess, executableOf } from "./target/process.ts";
import { pidsRunning } from "./target/procfs.ts";
import { type GoExecutable, openGoExecutable } from "./target/target.ts";
import { formatDuration } from "./log/slog.ts";

/** Readings while watching for leaks: often enough to see a goroutine move, rarely enough to cost nothing. */
const WATCH_EVERY_MS = 1000;
/** The second reading of a leak watch, which confirms what waitsince says. */
const CONFIRM_MS = 200;

/** The executable and the processes a dump reads. */
function targets(opts: Options): { exe: GoExecutable; pids: number[] } {
  if (opts.path === "") {
    const pid = opts.pid!;
    const path = executableOf(pid);
    try {
      return { exe: openGoExecutable(path), pids: [pid] };
    } catch (e) {
      throw new Error(`process ${pid} runs ${(e as Error).message}`);
    }
  }
  const exe = openGoExecutable(opts.path);
  if (opts.pid !== null) {
    checkProcess(opts.pid, opts.path);
    return { exe, pids: [opts.pid] };
  }
  const pids = pidsRunning(fileIdentity(opts.path));
  if (pids.length === 0) throw new Error(`no process runs ${opts.path}`);
  return { exe, pids };
}

/** Prints the dump; resolves to the exit status. Throws a one-line error on bad input. */
export async function dump(opts: Options, out: LineWriter): Promise<number> {
  const { exe, pids } = targets(opts);
  refuseOverwrite(opts.output, exe.path);
  const reader = new SnapshotReader(exe.image, exe.release);
  const info = exe.image.info();
  const biases = new LoadBiases(info.pie, fileIdentity(exe.path), info.segments);
  const biasOf = (pid: number) => {
    checkUserProcess(pid);
    const bias = biases.of(pid);
    if (bias === null) throw new Error(`process ${pid} exited while being read`);
    return bias;
  };
  const readAll = (): Promise<Snapshot[]> =>
    Promise.all(pids.map((pid) => reader.read(pid, biasOf(pid), { args: true })));
  const style = { minor: exe.release.minor };
  const heading = (pid: number) =>
    pids.length > 1 || opts.pid === null ? `process ${pid} ${exe.path}:\n\n` : "";

  if (opts.dump === "goroutine") {
    // Every process is read (and its text made) before anything is written: an error writes nothing.
    const texts: string[] = [];
    for (const pid of pids) {
      const blocks: string[] = [heading(pid)];
      const now = monotonicNs();
      await reader.stream(pid, biasOf(pid), { args: true }, (some) => {
        const shown = some.filter((g) => !g.system).map((g) => formatGoroutine(g, style, now));
        if (shown.length > 0) blocks.push((blocks.length > 1 ? "\n" : "") + shown.join("\n"));
      });
      if (pids.length > 1) blocks.push("\n");
      texts.push(blocks.join(""));
    }
    for (const t of texts) out.write(t);
    return 0;
  }

  const watches = pids.map(() => new LeakWatch());
  const snaps = await watchLeaks(readAll, watches, opts.leakAfterNs);
  snaps.forEach((s, i) => {
    const { leaked: verdicts } = judge(
      watches[i],
      s,
      reader,
      info.segments,
      biases.of(s.pid) ?? 0,
      opts.leakAfterNs,
    );
    const now = monotonicNs();
    const leaked = s.goroutines.filter((g) => verdicts.has(g.goid));
    out.write(heading(s.pid) + leaked.map((g) => formatGoroutine(g, style, now, " (leaked)")).join("\n"));
    if (pids.length > 1) out.write("\n");
  });
  return 0;
}

/**
 * Reads the processes until every goroutine blocked in the first reading either moved or was watched
 * for `leakAfterNs` (a second reading soon after the first confirms what the runtime's waitsince
 * already proves); returns the last readings.
 */
async function watchLeaks(
  readAll: () => Promise<Snapshot[]>,
  watches: LeakWatch[],
  leakAfterNs: number,
): Promise<Snapshot[]> {
  const observe = (snaps: Snapshot[]) => snaps.forEach((s, i) => watches[i].observe(s.goroutines, s.startNs));
  let snaps = await readAll();
  observe(snaps);
  await sleep(Math.min(CONFIRM_MS, leakAfterNs / 1e6));
  snaps = await readAll();
  observe(snaps);
  let told = false;
  for (;;) {
    const now = monotonicNs();
    const left = Math.max(...snaps.map((s, i) => watches[i].remainingNs(s.goroutines, now, leakAfterNs)));
    if (left <= 0) return snaps;
    if (!told && Deno.stderr.isTerminal()) {
      told = true;
      Deno.stderr.writeSync(new TextEncoder().encode(
        `gmon: watching blocked goroutines for up to ${
          formatDuration(Math.ceil(left / 1e6) * 1e6)
        } (-leak-after)\n`,
      ));
    }
    await sleep(Math.min(WATCH_EVERY_MS, left / 1e6 + 1));
    snaps = await readAll();
    observe(snaps);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
