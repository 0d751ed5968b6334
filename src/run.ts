/**
 * A tracing session: open the target, load and attach the probes, drain the ring into state and log
 * lines until a signal (or the one traced process ends), then detach and summarise.
 *
 * @module
 */
import { bpfObject } from "./assets.ts";
import { PollPacer } from "./bpf/pacer.ts";
import { Probes } from "./bpf/probes.ts";
import { monotonicToEpochMs, raiseFileLimit } from "./bpf/native.ts";
import type { Options } from "./cli.ts";
import { EventLines } from "./log/events.ts";
import { serve } from "./endpoint/http.ts";
import { LeakReport } from "./log/report.ts";
import type { Attr, Logger } from "./log/slog.ts";
import type { LineWriter } from "./log/writer.ts";
import { refuseOverwrite } from "./log/output.ts";
import { LiveGoroutines, siteOf } from "./state/live.ts";
import type { Snapshot as ViewSnapshot, StateView } from "./state/view.ts";
import { fileIdentity, LoadBiases } from "./symbolize/bias.ts";
import { StackTable } from "./symbolize/stacks.ts";
import { type Launched, resolveProgram, SIGNAL_NUMBERS, startStopped } from "./target/launch.ts";
import { checkProcess, executableOf } from "./target/process.ts";
import { processAlive } from "./target/procfs.ts";
import { openTarget, type Target } from "./target/target.ts";
import { statPath } from "./target/files.ts";
import type { Segment } from "./target/wasm.ts";
import { SnapshotReader } from "./snapshot/read.ts";
import { LiveSnapshots, type Reading } from "./snapshot/source.ts";
import { bySite } from "./snapshot/sites.ts";
import { pidsRunning } from "./target/procfs.ts";
import { RecordConsumer } from "./records.ts";

/**
 * 32 MiB of 40-1056 byte records: scripts/bench's burst of 1M goroutines, every event logged to a file,
 * loses none; a larger ring would only add to gmon's RSS (its pages are mapped into gmon).
 */
const RING_BYTES = 32 << 20;
/** How often to look for lost records and exited processes. */
const HOUSEKEEPING_MS = 250;

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
  const path = targetPath(opts);
  refuseOverwrite(opts.output, path);
  const target = openTarget(path);
  if (opts.pid !== null) checkProcess(opts.pid, path);
  // One format for every line: the logger's, which main chose from -format.
  const enc = log.encoding;
  const stacks = new StackTable((pcs) => target.image.symbolize(pcs), enc);
  const live = new LiveGoroutines((id) => siteOf(stacks.entries[id - 1]?.frames ?? []));
  const epochOffsetMs = monotonicToEpochMs();
  let lost = 0;
  // What the endpoint and the leak report read, in this process: no copies of the state.
  const info = target.image.info();
  const biases = new LoadBiases(info.pie, fileIdentity(path), info.segments);
  // Set once the program to trace is known (launch mode starts it below).
  let launched: Launched | null = null;
  const tracedPids = () => {
    const one = launched?.pid ?? opts.pid;
    return one !== null ? [one] : pidsRunning(fileIdentity(path));
  };
  const snapshots = snapshotsOf(target, info.segments, biases, tracedPids, opts.leakAfterNs, log);
  // The page's view of the last reading by site, computed once per reading.
  let bySiteCache: { of: unknown; value: ViewSnapshot } | null = null;
  const bySiteOf = (taken: { readings: readonly Reading[]; takenNs: number } | null): ViewSnapshot | null => {
    if (taken === null) return null;
    if (bySiteCache?.of !== taken) {
      const siteOfGopc = (gopc: number) => siteOf(stacks.created(gopc).frames);
      bySiteCache = { of: taken, value: bySite(taken.readings, siteOfGopc, taken.takenNs) };
    }
    return bySiteCache.value;
  };
  const view: StateView = {
    path,
    live,
    stack: (id) => stacks.entries[id - 1],
    nowNs: () => (Date.now() - epochOffsetMs) * 1e6,
    epochMs: (ns) => epochOffsetMs + ns / 1e6,
    lost: () => lost,
    snapshots: snapshots ?? undefined,
    goMinor: target.release.minor,
    snapshot: snapshots === null ? undefined : () => bySiteOf(snapshots.lastTaken),
  };

  // Taken in this order, released in reverse on any failure: nothing stays bound, running or attached.
  let endpoint: Awaited<ReturnType<typeof serve>> | null = null;
  let probes: Probes | null = null;
  try {
    // Bound before anything is attached: a port in use leaves nothing behind.
    if (opts.pprofPort !== null) {
      raiseFileLimit();
      endpoint = serve(view, opts.pprofAddr, opts.pprofPort);
    }
    probes = Probes.load(bpfObject, RING_BYTES, (line) => log.debug("libbpf", [["text", line]]));
    if (opts.args.length > 0) launched = await startStopped(path, opts.args.slice(1));
    const pid = launched?.pid ?? opts.pid ?? -1;
    for (const spec of target.probes) {
      log.debug("probe", [["what", spec.what], ["offset", spec.offset], ["reg", spec.reg], [
        "how",
        spec.how ?? "",
      ]]);
      probes.attach(path, pid, spec);
    }
  } catch (e) {
    launched?.signal("SIGKILL");
    await launched?.status;
    probes?.close();
    await endpoint?.close();
    throw e;
  }
  const ring = probes;
  const onePid = launched?.pid ?? opts.pid;

  const records = new RecordConsumer({
    probes: target.probes,
    stacks,
    biasOf: (pid) => biases.of(pid),
    live,
    lines: log.enabled("INFO") ? { format: new EventLines(onePid === null, enc), out } : null,
    epochOffsetMs,
  });

  const checkLost = () => {
    const nowLost = ring.lost() + records.malformed + records.unplaced;
    if (nowLost > lost) {
      lost = nowLost;
      log.warn("events lost", [["lost", lost]]);
    }
  };
  const gone = new Set<number>();
  const processExited = (pid: number) => {
    if (gone.has(pid)) return;
    gone.add(pid);
    log.info("process exited", [["pid", pid], ["live", live.dropProcess(pid)]]);
    biases.forget(pid);
  };
  const housekeeping = () => {
    checkLost();
    for (const pid of live.pids()) if (pid !== onePid && !processAlive(pid)) processExited(pid);
  };

  const report = new LeakReport(view);
  const leakReport = () => {
    for (const attrs of report.attrs(onePid === null)) log.info("leak report", attrs);
  };
  const reportMs = opts.reportIntervalNs === null ? Infinity : opts.reportIntervalNs / 1e6;

  // Goroutines alive before gmon attached (none in launch mode: the program has not run yet).
  const adopted = launched === null && snapshots !== null
    ? await adoptRunning(snapshots, stacks, live, () => ring.ring.drain(records.onRecord), view.nowNs())
    : 0;
  const attachedAttrs: Attr[] = [["path", path], ["go_version", target.goVersion], ["pid", onePid ?? "any"]];
  if (launched === null) attachedAttrs.push(["goroutines", adopted]);
  lifecycle(log, "attached", attachedAttrs);
  out.flush();
  launched?.resume();
  if (endpoint !== null) snapshots?.watch(watchEveryMs(opts.leakAfterNs));

  return await new Promise<number>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastHousekeeping = Date.now();
    let lastReport = lastHousekeeping;
    let stopping = false;
    let status = 0;
    const pacer = new PollPacer(RING_BYTES);
    const poll = () => {
      const drained = ring.ring.drain(records.onRecord);
      const now = Date.now();
      if (now - lastHousekeeping >= HOUSEKEEPING_MS) {
        lastHousekeeping = now;
        housekeeping();
        if (launched === null && onePid !== null && !processAlive(onePid)) return stop();
        // Nobody reads gmon's lines any more (`gmon | head -1`): end quietly, as on a broken pipe.
        if (outputGone()) out.closed = true;
      }
      if (now - lastReport >= reportMs) {
        lastReport = now;
        leakReport();
      }
      out.flush();
      if (out.closed) return stop();
      timer = setTimeout(poll, pacer.next(drained));
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearTimeout(timer);
      snapshots?.close();
      ring.ring.drain(records.onRecord);
      checkLost();
      ring.close();
      // What was live until the end is the leak report's point, so it comes before forgetting
      // the process that ended.
      leakReport();
      if (onePid !== null && !processAlive(onePid)) processExited(onePid);
      lifecycle(log, "detached", [["created", live.created], ["exited", live.exited], ["live", live.live], [
        "lost",
        lost,
      ]]);
      out.flush();
      if (endpoint === null) return resolve(status);
      // Stop listening; requests in flight get a second to finish.
      void Promise.race([endpoint.close(), new Promise((r) => setTimeout(r, 1000))]).then(() =>
        resolve(status)
      );
    };
    let signals = 0;
    const onSignal = (signal: Deno.Signal) => () => {
      if (++signals > 1) {
        // A second Ctrl-C: leave now, taking a launched program along. Links and maps are file
        // descriptors: the kernel detaches them.
        launched?.signal("SIGKILL");
        Deno.exit(130);
      }
      // In launch mode the program decides: it gets the signal, and its end ends the session.
      if (launched !== null) launched.signal(signal);
      else stop();
    };
    Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
    Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
    launched?.status.then((s) => {
      status = s.signal !== null ? 128 + (SIGNAL_NUMBERS[s.signal] ?? 0) : s.code;
      stop();
    });
    poll();
    // A signal during start-up is handled now, as it would have been had it come a moment later.
    for (const signal of early.splice(0)) onSignal(signal)();
  });
}

/**
 * The attached and detached lines are what a user waits for and the summary of a run (created, exited,
 * lost): at -level WARN they still come, as WARN.
 */
function lifecycle(log: Logger, msg: string, attrs: Attr[]): void {
  if (log.enabled("INFO")) log.info(msg, attrs);
  else log.warn(msg, attrs);
}

/** How often the endpoint's leak watch reads the processes: a few readings per -leak-after. */
function watchEveryMs(leakAfterNs: number): number {
  return Math.min(30_000, Math.max(1000, leakAfterNs / 1e6 / 6));
}

/**
 * Readings of the traced processes, or null (with a warning: tracing goes on without them) when this
 * executable's goroutines can't be read.
 */
function snapshotsOf(
  target: Target,
  segments: Segment[],
  biases: LoadBiases,
  pids: () => number[],
  leakAfterNs: number,
  log: Logger,
): LiveSnapshots | null {
  try {
    const reader = new SnapshotReader(target.image, target.release);
    return new LiveSnapshots({ reader, segments, biasOf: (pid) => biases.of(pid), pids, leakAfterNs });
  } catch (e) {
    log.warn("goroutines can't be read", [["reason", (e as Error).message]]);
    return null;
  }
}

/**
 * Reads the goroutines alive now and counts them at their go statement's site; returns how many were
 * adopted. The ring is drained first, so that goroutines created or ended since the probes were
 * attached are known as such and not adopted twice.
 */
async function adoptRunning(
  snapshots: LiveSnapshots,
  stacks: StackTable,
  live: LiveGoroutines,
  drain: () => void,
  nowNs: number,
): Promise<number> {
  const readings = await snapshots.current(0);
  drain();
  let n = 0;
  for (const { snapshot } of readings) {
    for (const g of snapshot.goroutines) {
      if (live.adopt(snapshot.pid, g.goid, stacks.created(g.gopc).id, nowNs)) n++;
    }
  }
  return n;
}
