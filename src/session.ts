/**
 * One tracing session's parts and its loop: the endpoint, the probes, the traced executables and their
 * processes, the readings of their goroutines; draining the ring into state and lines until a signal or
 * the traced process's end, then detaching and summing up.
 *
 * @module
 */
import { bpfObject } from "./assets.ts";
import { PollPacer } from "./bpf/pacer.ts";
import { Probes } from "./bpf/probes.ts";
import { monotonicToEpochMs, raiseFileLimit, releaseFreeMemory } from "./bpf/native.ts";
import type { Options } from "./cli.ts";
import { type Endpoint, serve } from "./endpoint/http.ts";
import { EventLines } from "./log/events.ts";
import { LeakReport } from "./log/report.ts";
import type { Attr, Logger } from "./log/slog.ts";
import type { LineWriter } from "./log/writer.ts";
import { bySite } from "./snapshot/sites.ts";
import { LiveSnapshots, type Reading } from "./snapshot/source.ts";
import type { Snapshot } from "./snapshot/read.ts";
import { LiveGoroutines, siteOf } from "./state/live.ts";
import type { Snapshot as ViewSnapshot, StateView } from "./state/view.ts";
import { StackRegistry, StackTable } from "./symbolize/stacks.ts";
import { DeployWatch } from "./target/deploys.ts";
import { type Launched, SIGNAL_NUMBERS, startStopped } from "./target/launch.ts";
import { ownPidNamespace, pidsRunning, processAlive } from "./target/procfs.ts";
import type { Target } from "./target/target.ts";
import { Processes } from "./trace/processes.ts";
import { fileKey, type Program, Programs } from "./trace/programs.ts";
import { RecordConsumer } from "./trace/records.ts";
import { Redeploys } from "./trace/redeploys.ts";
import { Fleet } from "./trace/fleet.ts";

/**
 * 32 MiB of 40-1056 byte records: scripts/bench's burst of 1M goroutines, every event logged to a file,
 * loses none; a larger ring would only add to gmon's RSS (its pages are mapped into gmon).
 */
const RING_BYTES = 32 << 20;
/** How often to look for lost records and exited processes. */
const HOUSEKEEPING_MS = 250;
/** How often memory freed since is given back to the kernel (see releaseFreeMemory). */
const RELEASE_MS = 10_000;

/** A tracing session. */
export class Session {
  readonly #log: Logger;
  readonly #out: LineWriter;
  readonly registry = new StackRegistry();
  readonly live: LiveGoroutines;
  readonly epochOffsetMs = monotonicToEpochMs();
  lost = 0;
  endpoint: Endpoint | null = null;
  launched: Launched | null = null;
  #probes: Probes | null = null;
  #programs: Programs | null = null;
  #program: Program | null = null;
  #processes: Processes | null = null;
  #redeploys: Redeploys | null = null;
  #fleet: Fleet | null = null;
  #stopped = false;
  #records: RecordConsumer | null = null;
  snapshots: LiveSnapshots | null = null;
  readonly view: StateView;

  constructor(log: Logger, out: LineWriter) {
    this.#log = log;
    this.#out = out;
    this.live = new LiveGoroutines((id) => siteOf(this.registry.get(id)?.frames ?? []));
    this.registry.evictWith(this.live);
    this.view = this.#makeView();
  }

  get processes(): Processes {
    return this.#processes!;
  }

  /** The executables traced now. */
  get programs(): Program[] {
    return this.#programs?.all ?? [];
  }

  /** Binds the endpoint (before anything is attached: a port in use leaves nothing behind). */
  serve(addr: string, port: number): void {
    raiseFileLimit();
    this.endpoint = serve(this.view, addr, port);
    const where = `http://${addr.includes(":") ? `[${addr}]` : addr}:${this.endpoint.addr.port}/`;
    if (isLoopback(addr)) this.#log.info("endpoint", [["address", where]]);
    else {
      this.#log.warn("endpoint open beyond this host: it shows the program's stacks and arguments", [[
        "address",
        where,
      ]]);
    }
  }

  /**
   * Loads the probes, starts a launched program (stopped), attaches to `single` (the one executable of
   * -path, -pid and launch mode) or, without one, to every Go program of the host (-all). Throws a
   * one-line error; {@link abort} then undoes what was done.
   */
  async start(opts: Options, single: { path: string; target: Target } | null): Promise<void> {
    const log = this.#log;
    const probes = Probes.load(
      bpfObject,
      RING_BYTES,
      (line) => log.debug("libbpf", [["text", line]]),
      ownPidNamespace(),
    );
    this.#probes = probes;
    if (single !== null && opts.args.length > 0) {
      this.launched = await startStopped(single.path, opts.args.slice(1));
    }
    const onePid = this.launched?.pid ?? opts.pid;
    const programs = new Programs(
      probes,
      this.registry,
      log.encoding,
      (exe, why) => log.warn("goroutines can't be read", [["exe", exe], ["reason", why]]),
    );
    this.#programs = programs;
    const processes = new Processes(programs, this.live, log, onePid);
    this.#processes = processes;
    if (single !== null) this.#startSingle(opts, single.path, single.target, onePid);
    else this.#startFleet(opts);
    const labels = single === null ? (pid: number) => processes.labels(pid) : undefined;
    const lines = log.enabled("INFO")
      ? new EventLines(onePid === null, log.encoding, labels, this.live.core)
      : null;
    if (lines !== null) processes.onForget = (pid) => lines.forget(pid);
    this.#records = new RecordConsumer({
      site: programs.site,
      live: this.live,
      lines: lines === null ? null : { format: lines, out: this.#out },
      epochOffsetMs: this.epochOffsetMs,
      seen: processes.seen,
      process: processes.process,
    }, new StackTable(() => [], log.encoding, this.registry).fixed([]));
    if (single === null || this.#program!.reader !== null) {
      this.snapshots = new LiveSnapshots({
        sourceOf: (pid) => processes.sourceOf(pid),
        pids: () => processes.pids(),
        leakAfterNs: opts.leakAfterNs,
      });
    }
  }

  #startSingle(opts: Options, path: string, target: Target, onePid: number | null): void {
    const log = this.#log;
    const program = this.#programs!.open(path, path, onePid ?? -1, fileKey(path), target);
    this.#program = program;
    for (const spec of target.probes) {
      log.debug("probe", [["what", spec.what], ["offset", spec.offset], ["reg", spec.reg], [
        "how",
        spec.how ?? "",
      ]]);
    }
    const processes = this.#processes!;
    try {
      this.#probes!.watchProcesses();
      processes.endsRecorded = true;
    } catch (e) {
      // Without exec and exit records, a process's end is still seen within a housekeeping round.
      log.warn("execs not followed", [["reason", (e as Error).message]]);
    }
    if (opts.pid !== null) processes.add(opts.pid, program);
    if (onePid === null) {
      for (const pid of pidsRunning(program.biases.file)) processes.add(pid, program);
      this.#redeploys = this.#followDeploys(false);
      this.#redeploys?.add(program);
    }
  }

  /** Host-wide mode: exec records are how programs started later are found, so they are a must. */
  #startFleet(opts: Options): void {
    this.#probes!.watchProcesses();
    this.#processes!.endsRecorded = true;
    const fleet = new Fleet(this.#programs!, this.#processes!, this.#log, {
      exe: opts.exeGlob,
      container: opts.container,
    });
    this.#fleet = fleet;
    const redeploys = this.#followDeploys(true);
    this.#redeploys = redeploys;
    // Those found at start are adopted with the rest (adoptRunning); those found later, as they come.
    fleet.onOpen = (p) => redeploys?.add(p, false);
    fleet.scan();
    fleet.onOpen = (p, pid) => {
      redeploys?.add(p, false);
      void this.#adoptFirst(pid);
    };
  }

  /** Deploys of traced executables: they may be rewritten or replaced while gmon runs. */
  #followDeploys(closeOnWrite: boolean): Redeploys | null {
    let watch: DeployWatch | null = null;
    try {
      watch = new DeployWatch();
      return new Redeploys(watch, this.#programs!, this.#log, closeOnWrite);
    } catch (e) {
      watch?.close();
      this.#log.warn(
        "deploys not followed: a rewritten executable would run without probes until gmon restarts",
        [[
          "reason",
          (e as Error).message,
        ]],
      );
      return null;
    }
  }

  /** Undoes a failed start: nothing stays bound, running or attached. */
  async abort(): Promise<void> {
    this.launched?.signal("SIGKILL");
    await this.launched?.status;
    this.#redeploys?.close();
    this.#probes?.close();
    await this.endpoint?.close();
  }

  /**
   * Reads the goroutines alive now and counts them at their go statement's site; returns how many were
   * adopted. The ring is drained first, so that goroutines created or ended since the probes were
   * attached are known as such and not adopted twice.
   */
  async adoptRunning(): Promise<number> {
    if (this.snapshots === null) return 0;
    const readings = await this.snapshots.current(0);
    this.#drain();
    return this.#adopt(readings.map((r) => r.snapshot));
  }

  /** Adopts the goroutines of `snapshots`; returns how many were new to gmon. */
  #adopt(snapshots: readonly Snapshot[]): number {
    const nowNs = this.view.nowNs();
    let n = 0;
    for (const snapshot of snapshots) {
      const stacks = this.#programOf(snapshot.pid)?.stacks;
      if (stacks === undefined) continue;
      for (const g of snapshot.goroutines) {
        if (this.live.adopt(snapshot.pid, g.goid, stacks.created(g.gopc).id, nowNs)) n++;
      }
    }
    return n;
  }

  /**
   * Host-wide mode attaches to a new executable as its first process runs: what that process created
   * before is adopted, as at gmon's start.
   */
  async #adoptFirst(pid: number): Promise<void> {
    const src = this.#processes!.sourceOf(pid);
    if (src === null) return;
    try {
      const snapshot = await src.reader.read(pid, src.bias);
      if (this.#stopped) return;
      this.#drain();
      this.#adopt([snapshot]);
    } catch { /* gone already */ }
  }

  #programOf(pid: number): Program | undefined {
    return this.#processes?.programOf(pid) ?? this.#program ?? undefined;
  }

  #drain(): number {
    const records = this.#records!;
    records.renew();
    const drained = this.#probes!.ring.drainChunks(records.consume);
    records.flush();
    return drained;
  }

  /** Records lost so far: the kernel's drops and records that can't be used; said when they grow. */
  #checkLost(): void {
    const r = this.#records!;
    const nowLost = this.#probes!.lost() + r.malformed + r.unplaced;
    if (nowLost > this.lost) {
      this.lost = nowLost;
      this.#log.warn("events lost", [["lost", this.lost]]);
    }
  }

  /** Says what the output lost: in the output itself once it takes lines again, on stderr while it fails. */
  #outputNotices(): void {
    const dropped = this.#out.takeDropped();
    if (dropped > 0) this.#log.warn("output too slow: lines dropped", [["dropped", dropped]]);
    const failure = this.#out.takeFailure();
    if (failure !== null) {
      Deno.stderr.writeSync(
        new TextEncoder().encode(`gmon: ${failure}: lines are dropped (and counted) until it takes them\n`),
      );
    }
  }

  #housekeeping(outputGone: () => boolean): void {
    this.#checkLost();
    this.#processes!.housekeeping();
    this.#redeploys?.housekeeping();
    this.#fleet?.housekeeping();
    // Nobody reads gmon's lines any more (`gmon | head -1`): end quietly, as on a broken pipe.
    if (outputGone()) this.#out.closed = true;
  }

  /**
   * Traces until SIGINT/SIGTERM, the traced process's end, or the reader of the output going away;
   * resolves to the exit status (in launch mode, the program's).
   */
  run(opts: Options, early: Deno.Signal[], outputGone: () => boolean): Promise<number> {
    const report = new LeakReport(this.view);
    const onePid = this.#processes!.onePid;
    const leakReport = () => {
      for (const attrs of report.attrs(onePid === null)) this.#log.info("leak report", attrs);
    };
    const reportMs = opts.reportIntervalNs === null ? Infinity : opts.reportIntervalNs / 1e6;
    return new Promise<number>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let lastHousekeeping = Date.now();
      let lastRelease = lastHousekeeping;
      let lastReport = lastHousekeeping;
      let stopping = false;
      let status = 0;
      const pacer = new PollPacer(RING_BYTES);
      const poll = () => {
        const drained = this.#drain();
        // Execs of the executable wait for this: its probes must be right before it runs.
        this.#redeploys?.poll();
        const now = Date.now();
        if (now - lastHousekeeping >= HOUSEKEEPING_MS) {
          lastHousekeeping = now;
          this.#housekeeping(outputGone);
        }
        if (now - lastRelease >= RELEASE_MS) {
          lastRelease = now;
          releaseFreeMemory();
        }
        if (now - lastReport >= reportMs) {
          lastReport = now;
          leakReport();
        }
        this.#out.flush();
        this.#outputNotices();
        if (this.#out.closed || (this.launched === null && this.#processes!.ended)) return stop();
        timer = setTimeout(poll, pacer.next(drained));
      };
      const stop = () => {
        if (stopping) return;
        stopping = true;
        clearTimeout(timer);
        this.#detach();
        // What was live until the end is the leak report's point, so it comes before forgetting
        // the process that ended.
        leakReport();
        if (onePid !== null && !processAlive(onePid)) this.#processes!.exited(onePid, "process exited");
        const live = this.live;
        lifecycle(this.#log, "detached", [["created", live.created], ["exited", live.exited], [
          "live",
          live.live,
        ], [
          "lost",
          this.lost,
        ]]);
        this.#out.flush();
        if (this.endpoint === null) return resolve(status);
        // Stop listening; requests in flight get a second to finish.
        void Promise.race([this.endpoint.close(), new Promise((r) => setTimeout(r, 1000))]).then(() =>
          resolve(status)
        );
      };
      let signals = 0;
      const onSignal = (signal: Deno.Signal) => () => {
        if (++signals > 1) {
          // A second Ctrl-C: leave now, taking a launched program along. Links and maps are file
          // descriptors: the kernel detaches them.
          this.launched?.signal("SIGKILL");
          Deno.exit(130);
        }
        // In launch mode the program decides: it gets the signal, and its end ends the session.
        if (this.launched !== null) this.launched.signal(signal);
        else stop();
      };
      Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
      Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
      this.launched?.status.then((s) => {
        status = s.signal !== null ? 128 + (SIGNAL_NUMBERS[s.signal] ?? 0) : s.code;
        stop();
      });
      poll();
      // A signal during start-up is handled now, as it would have been had it come a moment later.
      for (const signal of early.splice(0)) onSignal(signal)();
    });
  }

  /** Takes the probes off after a last drain; stops the readings and the deploy watch. */
  #detach(): void {
    this.#stopped = true;
    this.snapshots?.close();
    this.#redeploys?.close();
    this.#drain();
    this.#checkLost();
    this.#probes!.close();
  }

  #makeView(): StateView {
    // The page's view of the last reading by site, computed once per reading.
    let cache: { of: unknown; value: ViewSnapshot } | null = null;
    const bySiteOf = (taken: { readings: readonly Reading[]; takenNs: number } | null) => {
      if (taken === null) return null;
      if (cache?.of !== taken) {
        const siteOfGopc = (pid: number, gopc: number) =>
          siteOf(this.#programOf(pid)?.stacks.created(gopc).frames ?? []);
        cache = { of: taken, value: bySite(taken.readings, siteOfGopc, taken.takenNs) };
      }
      return cache.value;
    };
    const program = () => this.#program;
    const snapshots = () => this.snapshots;
    const epochOffsetMs = this.epochOffsetMs;
    return {
      get path() {
        return program()?.exe ?? "every Go program of the host";
      },
      live: this.live,
      stack: (id) => this.registry.get(id),
      nowNs: () => (Date.now() - epochOffsetMs) * 1e6,
      epochMs: (ns) => epochOffsetMs + ns / 1e6,
      lost: () => this.lost,
      get snapshots() {
        return snapshots() ?? undefined;
      },
      get goMinor() {
        return program()?.target.release.minor;
      },
      labels: (pid) => this.#fleet === null ? [] : this.#processes!.labels(pid),
      snapshot: () => this.snapshots === null ? null : bySiteOf(this.snapshots.lastTaken),
    };
  }
}

/**
 * The attached and detached lines are what a user waits for and the summary of a run (created, exited,
 * lost): at -level WARN they still come, as WARN.
 */
export function lifecycle(log: Logger, msg: string, attrs: Attr[]): void {
  if (log.enabled("INFO")) log.info(msg, attrs);
  else log.warn(msg, attrs);
}

/** Whether an endpoint address is reachable from this host only. */
function isLoopback(addr: string): boolean {
  return addr === "localhost" || addr === "::1" || addr.startsWith("127.");
}
