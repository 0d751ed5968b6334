/**
 * A tracing session: open the target, load and attach the probes, drain the ring into state and log
 * lines until a signal (or the one traced process ends), then detach and summarise.
 *
 * @module
 */
import { bpfObject } from "./assets.ts";
import { PollPacer } from "./bpf/pacer.ts";
import { Probes } from "./bpf/probes.ts";
import { monotonicToEpochMs } from "./bpf/native.ts";
import type { Options } from "./cli.ts";
import { EventLines } from "./log/events.ts";
import { serve } from "./endpoint/http.ts";
import { LeakReport } from "./log/report.ts";
import type { Logger } from "./log/slog.ts";
import type { LineWriter } from "./log/writer.ts";
import { LiveGoroutines, siteOf } from "./state/live.ts";
import type { StateView } from "./state/view.ts";
import { fileIdentity, LoadBiases } from "./symbolize/bias.ts";
import { StackTable } from "./symbolize/stacks.ts";
import { type Launched, resolveProgram, SIGNAL_NUMBERS, startStopped } from "./target/launch.ts";
import { checkProcess } from "./target/process.ts";
import { processAlive } from "./target/procfs.ts";
import { RecordConsumer } from "./records.ts";
import { openTarget } from "./target/target.ts";

/**
 * 32 MiB of 40-1056 byte records: scripts/bench's burst of 1M goroutines, every event logged to a file,
 * loses none; a larger ring would only add to gmon's RSS (its pages are mapped into gmon).
 */
const RING_BYTES = 32 << 20;
/** How often to look for lost records and exited processes. */
const HOUSEKEEPING_MS = 250;

/** The executable to trace: -path, or in launch mode the program, which must be the same file. */
function targetPath(opts: Options): string {
  if (opts.args.length === 0) return opts.path;
  const prog = resolveProgram(opts.args[0]);
  if (opts.path !== "") {
    const [a, b] = [Deno.statSync(opts.path), Deno.statSync(prog)];
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
export async function trace(opts: Options, out: LineWriter, log: Logger): Promise<number> {
  const path = targetPath(opts);
  const target = openTarget(path);
  if (opts.pid !== null) checkProcess(opts.pid, path);
  // One format for every line: the logger's, which main chose from -format.
  const enc = log.encoding;
  const stacks = new StackTable((pcs) => target.image.symbolize(pcs), enc);
  const live = new LiveGoroutines((id) => siteOf(stacks.entries[id - 1]?.frames ?? []));
  const epochOffsetMs = monotonicToEpochMs();
  let lost = 0;
  // What the endpoint and the leak report read, in this process: no copies of the state.
  const view: StateView = {
    path,
    live,
    stack: (id) => stacks.entries[id - 1],
    nowNs: () => (Date.now() - epochOffsetMs) * 1e6,
    epochMs: (ns) => epochOffsetMs + ns / 1e6,
    lost: () => lost,
  };

  // Taken in this order, released in reverse on any failure: nothing stays bound, running or attached.
  let endpoint: Awaited<ReturnType<typeof serve>> | null = null;
  let launched: Launched | null = null;
  let probes: Probes | null = null;
  try {
    // Bound before anything is attached: a port in use leaves nothing behind.
    if (opts.pprofPort !== null) endpoint = serve(view, opts.pprofAddr, opts.pprofPort);
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

  const info = target.image.info();
  const biases = new LoadBiases(info.pie, fileIdentity(path), info.segments);
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
  const processExited = (pid: number) => {
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

  log.info("attached", [["path", path], ["go_version", target.goVersion], ["pid", onePid ?? "any"]]);
  out.flush();
  launched?.resume();

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
      ring.ring.drain(records.onRecord);
      checkLost();
      ring.close();
      // What was live until the end is the leak report's point, so it comes before forgetting
      // the process that ended.
      leakReport();
      if (onePid !== null && !processAlive(onePid)) processExited(onePid);
      log.info("detached", [["created", live.created], ["exited", live.exited], ["live", live.live], [
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
  });
}
