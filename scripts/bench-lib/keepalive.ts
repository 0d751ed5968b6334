/**
 * scripts/bench's keep-alive section, the busy service as a user sees it: the keep-alive HTTP server
 * (two goroutines per request) under `wrk -t2 -c50`, as fractions of its bare requests/s:
 *
 * - bare; the bare traps (gmon's placements, programs that return at once: the floor, measured);
 * - gmon, every event logged to a file (`-level INFO -o`-like, stdout to a file);
 * - gmon at `-level WARN` with the endpoint on (its /metrics read after the warm-up and at the end);
 * - the same two from --baseline's checkout, if given.
 *
 * Per mode: requests/s, and all the CPU a request takes (server, wrk, gmon; on a 2-CPU machine that
 * bounds requests/s, and it moves less than requests/s with the machine's other load), both as
 * fractions of bare; gmon's CPU per event. The floor computed as the issue states it: bare work per
 * request / (bare work + hits per request x the trap's cost per hit, from the trap section).
 *
 * @module
 */
import { type GmonMode, GmonRun } from "./gmon.ts";
import { gmonSpecs, InProcessProbes } from "./probes.ts";
import { cpuMs, load, median, sleep } from "./proc.ts";
import { startServer, wrk } from "./server.ts";

interface Mode {
  name: string;
  /** gmon from this checkout in this mode, or the bare traps, or nothing. */
  gmon?: { checkout: string; mode: GmonMode };
  traps?: Uint8Array<ArrayBuffer>;
}

interface Run {
  perSecond: number;
  requests: number;
  /** server + wrk CPU, ms */
  workMs: number;
  gmonMs: number;
  events: number;
  lost: number;
}

async function runOnce(server: string, mode: Mode, seconds: number, log: string): Promise<Run> {
  const srv = await startServer(server);
  let gmon: GmonRun | null = null;
  let traps: InProcessProbes | null = null;
  try {
    if (mode.gmon) gmon = await GmonRun.start(mode.gmon.checkout, server, mode.gmon.mode, log);
    if (mode.traps) traps = new InProcessProbes(mode.traps, server, srv.pid, gmonSpecs(server));
    // A second of load first, in every mode: what is measured is the steady state, not the JIT
    // compiling gmon's hot path or the server's first connections.
    await wrk(srv.addr, 1);
    await sleep(300);
    const events0 = (await gmon?.metricsEvents()) ?? gmon?.eventLines() ?? 0;
    const [server0, gmon0] = [cpuMs(srv.pid), gmon?.cpuMs() ?? 0];
    const w = await wrk(srv.addr, seconds);
    const serverMs = cpuMs(srv.pid) - server0;
    // What is queued when wrk stops is part of the run: let gmon drain it.
    await sleep(300);
    const gmonMs = (gmon?.cpuMs() ?? 0) - gmon0;
    const events1 = await gmon?.metricsEvents();
    const totals = (await gmon?.stop()) ?? traps?.stop() ?? { events: 0, lost: 0 };
    gmon = null;
    traps = null;
    const events = (events1 ?? totals.events) - events0;
    return {
      perSecond: w.perSecond,
      requests: w.requests,
      workMs: serverMs + w.cpuMs,
      gmonMs,
      events,
      lost: totals.lost,
    };
  } finally {
    await gmon?.stop();
    traps?.stop();
    srv.stop();
  }
}

export async function keepaliveSection(
  root: string,
  server: string,
  trapsBpf: Uint8Array<ArrayBuffer>,
  trapNs: number | null,
  tmp: string,
  runs: number,
  seconds: number,
  baseline: string | null,
): Promise<void> {
  const modes: Mode[] = [
    { name: "bare" },
    { name: "traps only (the floor, measured)", traps: trapsBpf },
    { name: "gmon -level INFO, to a file", gmon: { checkout: root, mode: { level: "INFO" } } },
    {
      name: "gmon -level WARN, endpoint on",
      gmon: { checkout: root, mode: { level: "WARN", endpoint: true } },
    },
  ];
  if (baseline !== null) {
    modes.push(
      { name: "--baseline -level INFO, to a file", gmon: { checkout: baseline, mode: { level: "INFO" } } },
      {
        name: "--baseline -level WARN, endpoint on",
        gmon: { checkout: baseline, mode: { level: "WARN", endpoint: true } },
      },
    );
  }
  const load0 = load();
  const all = modes.map(() => [] as Run[]);
  for (let r = 0; r < runs; r++) {
    for (const [i, m] of modes.entries()) all[i].push(await runOnce(server, m, seconds, `${tmp}/gmon.log`));
  }
  const med = (i: number, f: (r: Run) => number) => median(all[i].map(f));
  const bareRps = med(0, (r) => r.perSecond);
  const bareWorkUs = med(0, (r) => r.workMs * 1000 / r.requests);
  console.log(
    `\nkeep-alive HTTP server, 2 goroutines per request, wrk -t2 -c50 -d${seconds}s; ${runs} interleaved ` +
      `runs, medians; load ${load0} -> ${load()}`,
  );
  console.log(
    `  ${"".padEnd(36)} ${"req/s".padStart(8)} ${"of bare".padStart(8)} ${"CPU/req".padStart(9)} ` +
      `${"of bare".padStart(8)} ${"events/req".padStart(10)} ${"gmon CPU/event".padStart(15)} ` +
      `${"M events/CPU-s".padStart(14)}  lost`,
  );
  let hitsPerRequest = 0;
  const ofBare: [string, number, number][] = [];
  for (const [i, m] of modes.entries()) {
    const rps = med(i, (r) => r.perSecond);
    const perReq = med(i, (r) => r.events / r.requests);
    if (m.gmon && m.gmon.checkout === root && m.gmon.mode.level === "INFO") hitsPerRequest = perReq;
    const nsPerEvent = med(i, (r) => r.events > 0 && r.gmonMs > 0 ? r.gmonMs * 1e6 / r.events : NaN);
    // All the CPU a request takes (server, wrk, gmon): what bounds requests/s on a busy machine, and
    // less swayed than requests/s by whatever else runs on it.
    const cpuUs = med(i, (r) => (r.workMs + r.gmonMs) * 1000 / r.requests);
    const lost = all[i].reduce((n, r) => n + r.lost, 0);
    if (m.gmon) ofBare.push([m.name, rps / bareRps, bareWorkUs / cpuUs]);
    console.log(
      `  ${m.name.padEnd(36)} ${rps.toFixed(0).padStart(8)} ${(rps / bareRps).toFixed(3).padStart(8)} ` +
        `${cpuUs.toFixed(1).padStart(7)}us ${(bareWorkUs / cpuUs).toFixed(3).padStart(8)} ` +
        `${(m.gmon ? perReq.toFixed(2) : "").padStart(10)} ` +
        `${(m.gmon ? nsPerEvent.toFixed(0) + " ns" : "").padStart(15)} ` +
        `${(m.gmon ? (1000 / nsPerEvent).toFixed(2) : "").padStart(14)}  ${m.gmon ? lost : ""}`,
    );
  }
  if (trapNs !== null && hitsPerRequest > 0) {
    const floor = bareWorkUs / (bareWorkUs + hitsPerRequest * trapNs / 1000);
    console.log(
      `  floor: bare work ${bareWorkUs.toFixed(1)} us / (bare work + ${hitsPerRequest.toFixed(2)} hits x ` +
        `${(trapNs / 1000).toFixed(2)} us per trap) = ${floor.toFixed(3)} of bare`,
    );
    for (const [name, byRate, byCpu] of ofBare) {
      console.log(
        `  ${name}: ${(byRate / floor).toFixed(3)} of the floor by requests/s, ${
          (byCpu / floor).toFixed(3)
        } by CPU`,
      );
    }
  }
}
