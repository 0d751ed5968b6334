/**
 * A tracing session: open the target, load and attach the probes, drain the ring into state and log
 * lines until a signal (or the one traced process ends), then detach and summarise.
 *
 * @module
 */
import type { Options } from "./cli.ts";
import type { Attr, Logger } from "./log/slog.ts";
import type { LineWriter } from "./log/writer.ts";
import { refuseOverwrite } from "./log/output.ts";
import { lifecycle, Session } from "./session.ts";
import { resolveProgram } from "./target/launch.ts";
import { checkProcess, executableOf } from "./target/process.ts";
import { openTarget, type Target } from "./target/target.ts";
import { statPath } from "./target/files.ts";

/** The executable to trace: -path, or in launch mode the program, which must be the same file. */
function targetPath(opts: Options): string {
  if (opts.args.length === 0) return opts.path !== "" ? opts.path : executableOf(opts.pid!);
  const prog = resolveProgram(opts.args[0]);
  if (opts.path !== "") {
    const [a, b] = [statPath(opts.path), statPath(prog)];
    if (a.dev !== b.dev || a.ino !== b.ino) {
      throw new Error(`-path ${opts.path} is not the program launched, ${prog}`);
    }
  }
  return prog;
}

/**
 * Traces until SIGINT/SIGTERM, the one traced process's end, or the reader of our output going
 * away. Throws a one-line error, with nothing left attached or running, when the target or the
 * kernel refuses; otherwise resolves to the exit status (in launch mode, the program's).
 */
export async function trace(
  opts: Options,
  out: LineWriter,
  log: Logger,
  outputGone: () => boolean = () => false,
): Promise<number> {
  // Signals that arrive while gmon starts (a launched program still stopped) are kept, and acted on
  // once it runs: neither gmon nor the program may be left half started.
  const early: Deno.Signal[] = [];
  const keep = (signal: Deno.Signal) => () => void early.push(signal);
  const earlyHandlers = [["SIGINT", keep("SIGINT")], ["SIGTERM", keep("SIGTERM")]] as const;
  for (const [sig, h] of earlyHandlers) Deno.addSignalListener(sig, h);
  try {
    return await traceStarted(opts, out, log, early, outputGone);
  } finally {
    for (const [sig, h] of earlyHandlers) Deno.removeSignalListener(sig, h);
  }
}

async function traceStarted(
  opts: Options,
  out: LineWriter,
  log: Logger,
  early: Deno.Signal[],
  outputGone: () => boolean,
): Promise<number> {
  const single = opts.all ? null : openSingle(opts);
  const s = new Session(log, out);
  try {
    // Bound before anything is attached: a port in use leaves nothing behind.
    if (opts.pprofPort !== null) s.serve(opts.pprofAddr, opts.pprofPort);
    await s.start(opts, single);
  } catch (e) {
    await s.abort();
    throw e;
  }
  // Goroutines alive before gmon attached (none in launch mode: the program has not run yet).
  const adopted = s.launched === null ? await s.adoptRunning() : 0;
  const attachedAttrs: Attr[] = single === null
    ? [["all", true], ["executables", s.programs.length], ["processes", s.processes.pids().length]]
    : [["path", single.path], ["go_version", single.target.goVersion], ["pid", s.processes.onePid ?? "any"]];
  if (s.launched === null) attachedAttrs.push(["goroutines", adopted]);
  lifecycle(log, "attached", attachedAttrs);
  out.flush();
  s.launched?.resume();
  if (s.endpoint !== null) s.snapshots?.watch(watchEveryMs(opts.leakAfterNs));
  return await s.run(opts, early, outputGone);
}

/** The one executable of -path, -pid or launch mode, checked and opened. */
function openSingle(opts: Options): { path: string; target: Target } {
  const path = targetPath(opts);
  refuseOverwrite(opts.output, path);
  const target = openTarget(path);
  if (opts.pid !== null) checkProcess(opts.pid, path);
  return { path, target };
}

/** How often the endpoint's leak watch reads the processes: a few readings per -leak-after. */
function watchEveryMs(leakAfterNs: number): number {
  return Math.min(30_000, Math.max(1000, leakAfterNs / 1e6 / 6));
}
