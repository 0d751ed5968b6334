/**
 * scripts/bench's consumer section: gmon's own CPU per event, without the kernel's side. Real records
 * are captured once from the ring (the keep-alive server under wrk: net/http's stacks), then replayed
 * through gmon's record handling (src/trace/records.ts, the code the ring drains into), in chunks as a
 * 5 ms poll would drain them, each batch's lines written with one write:
 *
 * - INFO text and JSON lines to /dev/null (the formatting alone), and text to a new file (plus the
 *   kernel's page cache, which on this VM pays for first touching each page);
 * - WARN: state only, no lines.
 *
 * CPU time is this process's (all threads: GC included), from /proc/self/stat.
 *
 * @module
 */
import { Probes } from "../../src/bpf/probes.ts";
import { Layout } from "../../src/bpf/record.ts";
import { RING_HEADER, RING_LENGTH } from "../../src/bpf/ringbuf.ts";
import { EventLines } from "../../src/log/events.ts";
import { encoding, type Format } from "../../src/log/slog.ts";
import { blockingOut, LineWriter } from "../../src/log/writer.ts";
import { type ProbeSite, RecordConsumer } from "../../src/trace/records.ts";
import { LiveGoroutines, siteOf } from "../../src/state/live.ts";
import { StackTable } from "../../src/symbolize/stacks.ts";
import { openTarget } from "../../src/target/target.ts";
import { gmonSpecs } from "./probes.ts";
import { cpuMs, load, median, sleep } from "./proc.ts";
import { startServer, wrk } from "./server.ts";

/** Records as the ring held them (8-byte header, payload, 8-aligned), and where each ends. */
export interface Captured {
  bytes: Uint8Array<ArrayBuffer>;
  ends: number[];
}

/**
 * What the replay takes as the events' rate: their times are rewritten to it. Lines' heads change
 * with the millisecond: replayed at their captured times, far faster than they came, a millisecond
 * would hold fewer events than at this rate (~a busy server's burst) and cost more.
 */
const REPLAY_EVENTS_PER_SECOND = 500_000;

/** Records of `seconds` of wrk against the keep-alive server, through gmon's own BPF object. */
export async function capture(
  bpf: Uint8Array<ArrayBuffer>,
  server: string,
  seconds: number,
): Promise<Captured> {
  const srv = await startServer(server);
  const probes = Probes.load(bpf, 64 << 20, () => {});
  const out: Captured = { bytes: new Uint8Array(1 << 26), ends: [] };
  let end = 0;
  const keep = (data: Uint8Array, a: number, b: number, c: number, d: number) => {
    if (end + (b - a) + (d - c) > out.bytes.length) return;
    const from = end;
    out.bytes.set(data.subarray(a, b), end);
    out.bytes.set(data.subarray(c, d), end + b - a);
    end += b - a + d - c;
    for (let at = from; at < end;) {
      at += ((view(out).getUint32(at, true) & RING_LENGTH) + RING_HEADER + 7) & ~7;
      out.ends.push(at);
    }
  };
  try {
    for (const s of gmonSpecs(server)) probes.attach(server, srv.pid, s);
    const timer = setInterval(() => probes.ring.drainChunks(keep), 5);
    await wrk(srv.addr, seconds);
    await sleep(50);
    clearInterval(timer);
    probes.ring.drainChunks(keep);
  } finally {
    probes.close();
    srv.stop();
  }
  const v = view(out);
  const time = (i: number) => (i === 0 ? 0 : out.ends[i - 1]) + RING_HEADER + Layout.timeNs;
  const t0 = Number(v.getBigUint64(time(0), true));
  out.ends.forEach((_, i) => {
    v.setBigUint64(time(i), BigInt(t0 + Math.round(i * 1e9 / REPLAY_EVENTS_PER_SECOND)), true);
  });
  return out;
}

function view(c: Captured): DataView {
  return new DataView(c.bytes.buffer);
}

/** Discards what it is given. */
const NULL_OUT = { writeSync: (p: Uint8Array) => p.length };

export interface Mode {
  name: string;
  level: "INFO" | "WARN";
  format: Format;
  /** A file to write to (made anew each run); /dev/null when absent. */
  file?: string;
}

/** CPU ms to replay `records` `times` times in `mode`, in 5 ms batches of `batch` records. */
export function replay(records: Captured, server: string, mode: Mode, times: number, batch: number): number {
  const target = openTarget(server);
  const enc = encoding(mode.format);
  const stacks = new StackTable((pcs) => target.image.symbolize(pcs), enc);
  const live = new LiveGoroutines((id) => siteOf(stacks.get(id)?.frames ?? []));
  const file = mode.file === undefined
    ? null
    : Deno.openSync(mode.file, { write: true, create: true, truncate: true });
  const out = new LineWriter(blockingOut(file ?? NULL_OUT));
  const unknown = stacks.fixed([]);
  const sites: ProbeSite[] = target.probes.map((spec) => ({
    spec,
    key: "",
    stacks,
    biasOf: () => 0,
    exitStack: spec.program === "gmon_exit" ? stacks.fixed([spec.addr]) : unknown,
  }));
  const consumer = new RecordConsumer({
    site: (i) => sites[i],
    live,
    lines: mode.level === "INFO" ? { format: new EventLines(true, enc, undefined, live.core), out } : null,
    epochOffsetMs: Date.now(),
  });
  const n = records.ends.length;
  const cpu0 = cpuMs(Deno.pid);
  for (let t = 0; t < times; t++) {
    for (let i = 0; i < n; i += batch) {
      consumer.renew();
      const from = i === 0 ? 0 : records.ends[i - 1];
      consumer.consume(records.bytes, from, records.ends[Math.min(n, i + batch) - 1], 0, 0);
      consumer.flush();
      out.flush();
    }
  }
  const used = cpuMs(Deno.pid) - cpu0;
  file?.close();
  if (mode.file !== undefined) Deno.removeSync(mode.file);
  return used;
}

export async function consumerSection(
  bpf: Uint8Array<ArrayBuffer>,
  server: string,
  tmp: string,
  runs: number,
): Promise<void> {
  const records = await capture(bpf, server, 2);
  const n = records.ends.length;
  // About 2M events per measure, enough for 10 ms CPU ticks.
  const times = Math.max(1, Math.round(2e6 / n));
  // What one 5 ms poll drains at ~400k events/s, the busy server's rate.
  const batch = 2000;
  const modes: Mode[] = [
    { name: "INFO, text lines to /dev/null", level: "INFO", format: "text" },
    { name: "INFO, JSON lines to /dev/null", level: "INFO", format: "json" },
    { name: "INFO, text lines to a new file", level: "INFO", format: "text", file: `${tmp}/replay.log` },
    { name: "WARN, state only", level: "WARN", format: "text" },
  ];
  const load0 = load();
  const all = modes.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (const [i, m] of modes.entries()) all[i].push(replay(records, server, m, times, batch));
  }
  console.log(
    `\nconsumer: gmon's record handling alone, ${n} captured records (wrk on the keep-alive server) ` +
      `replayed ${times}x per run; ${runs} interleaved runs, medians; load ${load0} -> ${load()}`,
  );
  for (const [i, m] of modes.entries()) {
    const ms = median(all[i]);
    const rate = (n * times) / (ms / 1000);
    console.log(
      `  ${m.name.padEnd(34)} ${(rate / 1e6).toFixed(2).padStart(6)} M events per CPU-second ` +
        `(${(ms * 1e6 / (n * times)).toFixed(0)} ns per event)`,
    );
  }
}
