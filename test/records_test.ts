/**
 * The record consumer and the drain's core together, on ring chunks made here: what the core applies
 * itself and what it hands back (new stacks, processes, probes, milliseconds, other kinds, malformed
 * records) give the lines the general encoder writes and the counts the records add up to.
 */
import { assert, assertEquals } from "./assert.ts";
import { Flags, Kind, Layout } from "../src/bpf/record.ts";
import { EventLines } from "../src/log/events.ts";
import { type Attr, Duration, type Encoding, JSON_LINES, TEXT } from "../src/log/slog.ts";
import { LiveGoroutines, siteOf } from "../src/state/live.ts";
import { type StackEntry, StackRegistry, StackTable } from "../src/symbolize/stacks.ts";
import type { ProbeSpec } from "../src/bpf/probes.ts";
import { type ProbeSite, RecordConsumer } from "../src/trace/records.ts";
import type { Frame } from "../src/target/wasm.ts";

const CREATE_AT = 0x401000;
const EXIT_AT = 0x402000;
const EPOCH_MS = Date.UTC(2026, 11, 2, 4, 0, 0);

interface Rec {
  kind: number;
  pid: number;
  goid: number;
  timeNs: number;
  frames?: number[];
  probe?: number;
  flags?: number;
  /** A record that lies about its frames (a mismatched BPF object). */
  bad?: boolean;
}

/** Records as the ring holds them: an 8-byte header each, 8-aligned. */
function chunk(recs: Rec[]): Uint8Array<ArrayBuffer> {
  const size = (r: Rec) => (Layout.headerSize + (r.frames?.length ?? 0) * 8 + 8 + 7) & ~7;
  const out = new Uint8Array(recs.reduce((n, r) => n + size(r), 0));
  const v = new DataView(out.buffer);
  let at = 0;
  for (const r of recs) {
    const frames = r.frames ?? [];
    v.setUint32(at, Layout.headerSize + frames.length * 8, true);
    const p = at + 8;
    v.setUint32(p + Layout.kind, r.kind, true);
    v.setUint32(p + Layout.pid, r.pid, true);
    v.setBigUint64(p + Layout.goid, BigInt(r.goid), true);
    v.setBigUint64(p + Layout.timeNs, BigInt(r.timeNs), true);
    v.setUint32(p + Layout.nframes, r.bad ? 200 : frames.length, true);
    v.setUint32(p + Layout.flags, (r.flags ?? 0) | ((r.probe ?? 0) << Flags.probeShift), true);
    frames.forEach((f, i) => v.setBigUint64(p + Layout.frames + i * 8, BigInt(f), true));
    at += size(r);
  }
  return out;
}

const symbolize = (pcs: readonly number[]): Frame[][] =>
  pcs.map((pc) => [{ func: `main.f${pc.toString(16)}`, file: "/src/main.go", line: pc & 0xfff }]);

/** A tracer in small, its records fed as chunks. */
function tracer(enc: Encoding, cap = 1 << 15, left = new Set<number>()) {
  const registry = new StackRegistry(cap);
  const stacks = new StackTable(symbolize, enc, registry);
  const live = new LiveGoroutines((id) => siteOf(registry.get(id)?.frames ?? []));
  registry.evictWith(live);
  const lines = new EventLines(true, enc, () => [], live.core);
  const exitStack = stacks.fixed([EXIT_AT]);
  const spec = (addr: number, index: number) => ({ addr, index, retprobe: false }) as ProbeSpec;
  const sites: ProbeSite[] = [
    { spec: spec(CREATE_AT, 0), key: "k", stacks, biasOf: () => 0, exitStack },
    { spec: spec(EXIT_AT, 1), key: "k", stacks, biasOf: () => 0, exitStack },
  ];
  const processes: string[] = [];
  const said = new Set<number>();
  let out = "";
  const consumer = new RecordConsumer({
    site: (i) => sites[i],
    live,
    lines: { format: lines, out: { put: (b) => out += new TextDecoder().decode(b) } },
    epochOffsetMs: EPOCH_MS,
    // A process left out is said once, where the lines go: after the lines before its first record.
    seen: (pid) => {
      if (left.has(pid) && !said.has(pid)) out += `left out ${pid}\n`;
      said.add(pid);
      return !left.has(pid);
    },
    // Written where the lines go too: what a process's change writes comes after the lines before it.
    process: (kind, pid) => {
      processes.push(`${kind} ${pid}`);
      out += `${kind} ${pid}\n`;
    },
  });
  const feed = (recs: Rec[], wrapAt?: number) => {
    consumer.renew();
    const bytes = chunk(recs);
    if (wrapAt === undefined) consumer.consume(bytes, 0, bytes.length, 0, 0);
    else {
      // As the ring's end and start: the second piece first in the area.
      const area = new Uint8Array(bytes.length + 64);
      const tail = bytes.length - wrapAt;
      area.set(bytes.subarray(wrapAt), 0);
      area.set(bytes.subarray(0, wrapAt), area.length - wrapAt);
      consumer.consume(area, area.length - wrapAt, area.length, 0, tail);
    }
    consumer.flush();
  };
  return { feed, live, consumer, registry, processes, exitStack, take: () => [out, out = ""][0] };
}

/** A line as the general (string, attribute list) path writes it. */
function reference(
  enc: Encoding,
  timeNs: number,
  msg: string,
  goid: number,
  stack: StackEntry,
  more: Attr[],
) {
  const frames: Attr[] = [["stack", stack.frames.map((f, i) => [String(i), f] as const)]];
  return enc.line(
    enc.time(EPOCH_MS + timeNs / 1e6),
    "INFO",
    msg,
    enc.attrs([["goroutine_id", goid], ["stack_id", stack.id], ...frames, ...more]),
  );
}

const stackOf = (i: number) => [CREATE_AT, 0x403001 + i * 16, 0x404001];
/** The function of stack i's own frame (a return address, looked up less one). */
const nameOf = (i: number) => `main.f${(0x403000 + i * 16).toString(16)} `;

for (const enc of [TEXT, JSON_LINES]) {
  Deno.test(`${enc.format}: records through the core give the general encoder's lines and the right counts`, () => {
    const t = tracer(enc, 1 << 15, new Set([99]));
    const recs: Rec[] = [];
    const want: string[] = [];
    const created = new Map<number, { timeNs: number; stack: number }>();
    let timeNs = 5_000_000_000;
    // Creations from 3 stacks, exits, a repeat, a goroutine not seen created, a process left out.
    for (let g = 1; g <= 300; g++) {
      timeNs += g % 7 === 0 ? 1_250_000 : 1_000;
      const stack = g % 3;
      recs.push({
        kind: Kind.Create,
        pid: 7,
        goid: g,
        timeNs,
        frames: stackOf(stack),
        flags: g === 5 ? 1 : 0,
      });
      created.set(g, { timeNs, stack });
      if (g % 2 === 0) {
        recs.push({ kind: Kind.Exit, pid: 7, goid: g - 1, timeNs: timeNs + 10, probe: 1 });
        if (g === 10) recs.push({ kind: Kind.Exit, pid: 7, goid: g - 1, timeNs: timeNs + 11, probe: 1 });
      }
    }
    recs.push({ kind: Kind.Exit, pid: 7, goid: 1_000_000, timeNs: timeNs + 20, probe: 1 });
    recs.push({ kind: Kind.Create, pid: 99, goid: 1, timeNs: timeNs + 30, frames: stackOf(0) });
    recs.push({ kind: Kind.Exec, pid: 12, goid: 0, timeNs: timeNs + 40 });
    recs.push({ kind: Kind.Create, pid: 7, goid: 5000, timeNs: timeNs + 50, frames: stackOf(1), bad: true });
    t.feed(recs.slice(0, 150));
    t.feed(recs.slice(150), 40 * 8);
    // The expected lines, from the records in order. Stack ids: the exit's is 1, then as first seen.
    const idOf = new Map<number, number>();
    const ids = new Map<number, StackEntry>();
    const exited = new Set<number>();
    for (const r of recs) {
      if (r.kind === Kind.Exec) want.push(`exec ${r.pid}\n`);
      if (r.pid === 99 && !want.includes("left out 99\n")) want.push("left out 99\n");
      if (r.pid === 99 || r.bad || r.kind === Kind.Exec) continue;
      if (r.kind === Kind.Create) {
        const i = created.get(r.goid)!.stack;
        if (!idOf.has(i)) idOf.set(i, idOf.size + 2);
        const stack = t.registry.get(idOf.get(i)!)!;
        assert(stack.frames.some((f) => f.startsWith(nameOf(i))), `${stack.frames} for stack ${i}`);
        ids.set(r.goid, stack);
        const trunc: Attr[] = r.flags === 1 ? [["stack_truncated", true]] : [];
        want.push(reference(enc, r.timeNs, "runtime.newproc1", r.goid, stack, [...trunc, ["pid", 7]]));
      } else if (!exited.has(r.goid)) {
        exited.add(r.goid);
        const c = created.get(r.goid);
        const life: Attr[] = c === undefined
          ? []
          : [["created_stack_id", ids.get(r.goid)!.id], ["lifetime", new Duration(r.timeNs - c.timeNs)]];
        want.push(reference(enc, r.timeNs, "runtime.goexit1", r.goid, t.exitStack, [...life, ["pid", 7]]));
      }
    }
    const got = t.take().split("\n").filter((l) => l !== "").map((l) => l + "\n");
    assertEquals(got.length, want.length);
    got.forEach((line, i) => assertEquals(line, want[i], `line ${i}`));
    assertEquals([t.live.created, t.live.exited, t.live.preexisting, t.live.live], [300, 150, 1, 150]);
    assertEquals(t.live.has(99), false, "a process left out has no state");
    assertEquals(t.processes, ["exec 12"]);
    assertEquals(t.consumer.malformed, 1);
  });
}

Deno.test("records: stacks the core found are kept by eviction; evicted ones come back with new ids", () => {
  const t = tracer(TEXT, 8);
  // Stack 0 is created and exits over and over (nothing live, but in use); 40 others come once each.
  const recs: Rec[] = [];
  for (let g = 1; g <= 400; g++) {
    const i = g % 10 === 0 ? 100 + g : 0;
    recs.push({ kind: Kind.Create, pid: 3, goid: g, timeNs: g * 1000, frames: stackOf(i) });
    recs.push({ kind: Kind.Exit, pid: 3, goid: g, timeNs: g * 1000 + 1, probe: 1 });
  }
  t.feed(recs);
  const firstId = (lines: string) => Number(lines.match(/stack_id=(\d+)/)![1]);
  const out = t.take().split("\n").filter((l) => l.includes("newproc1"));
  const zero = out.filter((l) => l.includes(nameOf(0)));
  assertEquals(zero.length, 360);
  assertEquals(new Set(zero.map(firstId)).size, 1, "the stack in use kept one id through the sweeps");
  assert(t.registry.size < 42, `stacks kept: ${t.registry.size} of 42`);
  // An evicted stack seen again is interned anew, under a new id, and its lines say so.
  const old = firstId(out.find((l) => l.includes(nameOf(110)))!);
  assertEquals(t.registry.get(old), undefined, "evicted");
  t.feed([{ kind: Kind.Create, pid: 3, goid: 9999, timeNs: 1e9, frames: stackOf(110) }]);
  const again = t.take();
  assert(firstId(again) > old, `${firstId(again)} after ${old}`);
  assert(again.includes(nameOf(110)));
});
