/**
 * gmon as scripts/bench runs it: a separate process from a checkout (this one, or another to compare
 * with), its events to a file, maybe the endpoint on; ready once every probe is attached.
 *
 * @module
 */
import { openTarget } from "../../src/target/target.ts";
import { cpuMs, freePort, perfEvents, rssPeakKb, sysMs, tail, until } from "./proc.ts";

/** How gmon runs: its level, text or JSON, and whether the endpoint is on. */
export interface GmonMode {
  level: "INFO" | "WARN";
  format?: "text" | "json";
  endpoint?: boolean;
}

/** What a stopped gmon reports. */
export interface GmonTotals {
  events: number;
  lost: number;
}

/** A running gmon tracing `bin`. */
export class GmonRun {
  readonly #child: Deno.ChildProcess;
  readonly #log: string;
  readonly #port: number | null;

  private constructor(child: Deno.ChildProcess, log: string, port: number | null) {
    this.#child = child;
    this.#log = log;
    this.#port = port;
  }

  /** Starts `checkout`'s gmon on `bin` and resolves once all its probes are attached. */
  static async start(checkout: string, bin: string, mode: GmonMode, log: string): Promise<GmonRun> {
    Deno.writeTextFileSync(log, "");
    const port = mode.endpoint ? freePort() : null;
    const args = ["-path", bin, "-level", mode.level, "-format", mode.format ?? "text"];
    if (port !== null) args.push("-pprof-port", String(port));
    // Not -pid: gmon would end with the process, before its CPU time is read.
    const child = new Deno.Command("bash", {
      args: ["-c", 'exec "$0" "$@" > "$LOG"', `${checkout}/scripts/gmon`, ...args],
      env: { LOG: log },
    }).spawn();
    const probes = openTarget(bin).probes.length;
    await until(`gmon attached to ${bin}`, () => perfEvents(child.pid) >= probes);
    return new GmonRun(child, log, port);
  }

  get pid(): number {
    return this.#child.pid;
  }

  cpuMs(): number {
    return cpuMs(this.#child.pid);
  }

  sysMs(): number {
    return sysMs(this.#child.pid);
  }

  rssPeakKb(): number {
    return rssPeakKb(this.#child.pid);
  }

  /** Events seen so far (creations and exits), from /metrics; null without the endpoint. */
  async metricsEvents(): Promise<number | null> {
    if (this.#port === null) return null;
    const text = await (await fetch(`http://127.0.0.1:${this.#port}/metrics`)).text();
    let n = 0;
    for (
      const m of text.matchAll(/^gmon_goroutines_(?:created|exited|preexisting_exited)_total\S* (\d+)$/gm)
    ) {
      n += Number(m[1]);
    }
    return n;
  }

  /** Event lines logged so far (at INFO: every line but `msg=attached`). */
  eventLines(): number {
    const f = Deno.openSync(this.#log);
    const buf = new Uint8Array(1 << 20);
    let lines = 0;
    try {
      for (let n = f.readSync(buf); n !== null; n = f.readSync(buf)) {
        for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
      }
    } finally {
      f.close();
    }
    return Math.max(0, lines - 1);
  }

  /**
   * Stops gmon (Ctrl-C) and reads its totals from its summary; at WARN there is none: the events are
   * NaN and the lost ones from its warnings.
   */
  async stop(): Promise<GmonTotals> {
    this.#child.kill("SIGINT");
    await this.#child.status;
    const text = tail(this.#log, 1 << 16);
    const summary = /msg=detached created=(\d+) exited=(\d+) live=\d+ lost=(\d+)/.exec(text) ??
      /"msg":"detached","created":(\d+),"exited":(\d+),"live":\d+,"lost":(\d+)/.exec(text);
    if (summary) {
      return { events: Number(summary[1]) + Number(summary[2]), lost: Number(summary[3]) };
    }
    const lost = Number([...text.matchAll(/msg="events lost" lost=(\d+)/g)].at(-1)?.[1] ?? 0);
    return { events: NaN, lost };
  }
}
