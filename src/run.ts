/**
 * A tracing session: open the target, load and attach the probes, drain the ring into state and log
 * lines until a signal (or the one traced process ends), then detach and summarise.
 *
 * @module
 */
import { bpfObject } from "./assets.ts";
import { Probes } from "./bpf/probes.ts";
import { decodeRecord, Flags, GoroutineRecord, Kind } from "./bpf/record.ts";
import { monotonicToEpochMs } from "./bpf/native.ts";
import type { Options } from "./cli.ts";
import { EventLines } from "./output/events.ts";
import type { Logger } from "./output/slog.ts";
import type { LineWriter } from "./output/writer.ts";
import { LiveGoroutines, REPEAT } from "./state/live.ts";
import { fileIdentity, LoadBiases } from "./symbolize/bias.ts";
import { StackTable } from "./symbolize/stacks.ts";
import { checkProcess } from "./target/process.ts";
import { processAlive } from "./target/procfs.ts";
import { openTarget } from "./target/target.ts";

/** 64 MiB of 32-1048 byte records covers a burst of ~100k creations while the consumer is busy. */
const RING_BYTES = 64 << 20;
/** Probes don't wake the reader (see bpf/gmon.bpf.c): it polls this often. */
const POLL_MS = 5;
/** How often to look for lost records and exited processes. */
const HOUSEKEEPING_MS = 250;

/**
 * Traces until SIGINT/SIGTERM. Throws a one-line error, with nothing left attached, when the target
 * or the kernel refuses; otherwise resolves to the exit status.
 */
export async function trace(opts: Options, out: LineWriter, log: Logger): Promise<number> {
  const target = openTarget(opts.path);
  if (opts.pid !== null) checkProcess(opts.pid, opts.path);
  const probes = Probes.load(bpfObject, RING_BYTES, (line) => log.debug("libbpf", [["text", line]]));
  try {
    for (const spec of target.probes) probes.attach(opts.path, opts.pid ?? -1, spec);
  } catch (e) {
    probes.close();
    throw e;
  }

  const stacks = new StackTable((pcs) => target.image.symbolize(pcs));
  const info = target.image.info();
  const biases = new LoadBiases(info.pie, fileIdentity(opts.path), info.segments);
  const exitStack = stacks.fixed([target.exitPc]);
  const live = new LiveGoroutines();
  const lines = new EventLines(opts.pid === null);
  const logEvents = log.enabled("INFO");
  const epochOffsetMs = monotonicToEpochMs();
  const rec = new GoroutineRecord();
  let malformed = 0;
  let unplaced = 0;
  let lost = 0;

  const onRecord = (view: DataView, at: number, len: number) => {
    if (decodeRecord(view, at, len, rec) !== null) {
      malformed++;
      return;
    }
    const ms = epochOffsetMs + rec.timeNs / 1e6;
    if (rec.kind === Kind.Create) {
      // A PIE process gone before its mappings were read: its PCs can't be placed; count the loss.
      const bias = biases.of(rec.pid);
      if (bias === null) {
        unplaced++;
        return;
      }
      const stack = stacks.intern(rec, bias);
      if (live.create(rec.pid, rec.goid, stack.id) && logEvents) {
        out.write(lines.created(ms, rec.goid, stack, rec.pid, (rec.flags & Flags.Truncated) !== 0));
      }
    } else if (live.exit(rec.pid, rec.goid) !== REPEAT && logEvents) {
      out.write(lines.exited(ms, rec.goid, exitStack, rec.pid));
    }
  };

  const housekeeping = () => {
    const nowLost = probes.lost() + malformed + unplaced;
    if (nowLost > lost) {
      lost = nowLost;
      log.warn("events lost", [["lost", lost]]);
    }
    for (const pid of live.pids()) {
      if (pid !== opts.pid && !processAlive(pid)) {
        log.info("process exited", [["pid", pid], ["live", live.dropProcess(pid)]]);
        biases.forget(pid);
      }
    }
  };

  log.info("attached", [["path", opts.path], ["go_version", target.goVersion], [
    "pid",
    opts.pid === null ? "any" : opts.pid,
  ]]);
  out.flush();

  return await new Promise<number>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastHousekeeping = Date.now();
    let stopping = false;
    const poll = () => {
      probes.ring.drain(onRecord);
      const now = Date.now();
      if (now - lastHousekeeping >= HOUSEKEEPING_MS) {
        lastHousekeeping = now;
        housekeeping();
        if (opts.pid !== null && !processAlive(opts.pid)) {
          log.info("process exited", [["pid", opts.pid]]);
          return stop();
        }
      }
      out.flush();
      if (out.closed) return stop();
      timer = setTimeout(poll, POLL_MS);
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearTimeout(timer);
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      probes.ring.drain(onRecord);
      housekeeping();
      probes.close();
      log.info("detached", [
        ["created", live.created],
        ["exited", live.exited],
        ["live", live.live],
        ["lost", lost],
      ]);
      out.flush();
      resolve(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    poll();
  });
}
