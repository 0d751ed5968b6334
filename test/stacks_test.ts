/**
 * Creation stacks' memory is bounded: beyond a cap, stacks with no live goroutine are evicted (ids never
 * given again, slots reused), and what is made from them afterwards (lines, sites) stays right.
 */
import { assert, assertEquals } from "./assert.ts";
import { GoroutineRecord } from "../src/bpf/record.ts";
import { EventLines } from "../src/log/events.ts";
import { type Attr, Duration, JSON_LINES, TEXT } from "../src/log/slog.ts";
import { LiveGoroutines, siteOf } from "../src/state/live.ts";
import { type StackEntry, StackRegistry, StackTable } from "../src/symbolize/stacks.ts";
import type { Frame } from "../src/target/wasm.ts";
import { written } from "./written.ts";

const PID = 4242;
const CAP = 64;
/** The probe's own address: a creation record's first frame, looked up as it is. */
const PROBE = 0x1000;
const EXIT = 0x2000;

/** Distinct stacks from a few PCs, as a program's call paths combine: stack `i` is i's bits as calls. */
function pcsOf(i: number): number[] {
  const pcs = [PROBE, 0x1101];
  for (let bit = 0; bit < 16; bit++) pcs.push((i >> bit) & 1 ? 0x3001 : 0x3101);
  return [...pcs, 0x4001];
}

/** What the made-up program's PCs are: a few functions (file addresses: a return address less one). */
const FUNCS: Record<number, string> = {
  [PROBE]: "runtime.newproc1",
  0x1100: "runtime.newproc",
  0x3000: "main.a",
  0x3100: "main.b",
  0x4000: "main.main",
  [EXIT]: "runtime.goexit1",
};

/** The frames stack `i` shows: the probe's own frame is hidden, as Go's "created by" leaves it out. */
function framesOf(i: number): string[] {
  return pcsOf(i).slice(1).map((pc) => frameText(pc - 1));
}

function frameText(pc: number): string {
  return `${FUNCS[pc]} at /src/main.go:${pc & 0xfff}`;
}

/** A tracer's state in small: the stack tables, live goroutines, lines; and what the symbolizer did. */
function tracer(enc = TEXT) {
  const looked: number[] = [];
  const symbolize = (pcs: readonly number[]): Frame[][] => {
    looked.push(...pcs);
    return pcs.map((pc) => [{ func: FUNCS[pc], file: "/src/main.go", line: pc & 0xfff }]);
  };
  const registry = new StackRegistry(CAP);
  const stacks = new StackTable(symbolize, enc, registry);
  const live = new LiveGoroutines((id) => siteOf(registry.get(id)?.frames ?? []));
  registry.evictWith(live);
  const rec = new GoroutineRecord();
  rec.words = new Uint32Array(64);
  const intern = (i: number) => {
    const pcs = pcsOf(i);
    pcs.forEach((pc, j) => rec.words.set([pc, 0], 2 * j));
    rec.nframes = pcs.length;
    return stacks.intern(rec, 0, true);
  };
  return {
    registry,
    stacks,
    live,
    intern,
    looked,
    lines: new EventLines(false, enc),
    exit: stacks.fixed([EXIT]),
  };
}

/** A line as the general (string, attribute list) path writes it. */
function reference(
  enc = TEXT,
  msg: string,
  goid: number,
  stack: StackEntry,
  frames: string[],
  more: Attr[] = [],
) {
  const group: Attr[] = [["stack", frames.map((f, i) => [String(i), f] as const)]];
  return enc.line(
    enc.time(MS),
    "INFO",
    msg,
    enc.attrs([["goroutine_id", goid], ["stack_id", stack.id], ...group, ...more]),
  );
}

const MS = Date.UTC(2026, 10, 27, 6, 12, 58, 990);

Deno.test("stacks: beyond the cap, stacks with no live goroutine are evicted; frames are interned", () => {
  const t = tracer();
  const ids = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const stack = t.intern(i);
    assert(!ids.has(stack.id), `id ${stack.id} given twice`);
    ids.add(stack.id);
    t.live.create(PID, i + 1, stack.id, i);
    t.live.exit(PID, i + 1, i + 1);
    // Sweeps start beyond the cap and keep what is in use: with nothing live, the table stays near it.
    assert(t.registry.size <= CAP + 2, `${t.registry.size} stacks kept at ${i}`);
    assert(t.live.stacks().length <= CAP + 2, `${t.live.stacks().length} per-process stacks at ${i}`);
  }
  // Every PC was symbolized once, whatever the stacks that used it: 6 distinct (the exit's included).
  assertEquals(new Set(t.looked).size, t.looked.length);
  assertEquals(t.looked.length, 6);
});

for (const enc of [TEXT, JSON_LINES]) {
  Deno.test(`stacks (${enc.format}): an evicted stack seen again gets a new id, its own frames and lines`, () => {
    const t = tracer(enc);
    const first = t.intern(7);
    const firstId = first.id;
    const lines: string[] = [];
    // Each stack's goroutine exits at once: thousands of stacks churn through the table and its slots.
    for (let i = 0; i < 3000; i++) {
      const stack = t.intern(i);
      lines.push(written((o) => {
        t.lines.at(MS);
        t.lines.created(o, i + 1, stack, PID, false);
      }));
      assertEquals(lines[i], reference(enc, "runtime.newproc1", i + 1, stack, framesOf(i)), `stack ${i}`);
    }
    assertEquals(t.registry.get(firstId), undefined);
    assertEquals(first.frames, []);
    const again = t.intern(7);
    assert(again.id > firstId, `${again.id} after ${firstId}`);
    assertEquals(again.frames, framesOf(7));
    assertEquals(t.registry.get(again.id)?.frames, framesOf(7));
    // Its line is its own, though its slot's template was another stack's.
    assertEquals(
      written((o) => {
        t.lines.at(MS);
        t.lines.created(o, 9, again, PID, false);
      }),
      reference(enc, "runtime.newproc1", 9, again, framesOf(7)),
    );
  });
}

Deno.test("stacks: a stack with a live goroutine is never evicted; its exit line names it", () => {
  const t = tracer();
  // Ten goroutines stay live on stacks 0-9 while thousands of others come and go.
  const held = Array.from({ length: 10 }, (_, i) => t.intern(i));
  held.forEach((s, i) => t.live.create(PID, 1_000_000 + i, s.id, 0));
  for (let i = 10; i < 4000; i++) {
    const stack = t.intern(i);
    t.live.create(PID, i, stack.id, 0);
    t.live.exit(PID, i, 1);
  }
  assert(t.registry.size <= CAP + 12, `${t.registry.size} kept`);
  held.forEach((s, i) => {
    assertEquals(t.registry.get(s.id), s);
    assertEquals(s.frames, framesOf(i));
    // Seen again, it is the same stack, id unchanged.
    assertEquals(t.intern(i).id, s.id);
  });
  assertEquals(t.live.siteOfStack(held[3].id), "main.a");
  const stats = t.live.stacks().filter((s) => held.some((h) => h.id === s.stackId));
  assertEquals(stats.map((s) => s.live), Array(10).fill(1));
  const created = t.live.exit(PID, 1_000_003, 1_503_000_000);
  assertEquals(created, held[3].id);
  assertEquals(
    written((o) => {
      t.lines.at(MS);
      t.lines.exited(o, 1_000_003, t.exit, PID, created, t.live.lastLifetimeNs);
    }),
    reference(TEXT, "runtime.goexit1", 1_000_003, t.exit, [frameText(EXIT)], [
      ["created_stack_id", held[3].id],
      ["lifetime", new Duration(1_503_000_000)],
    ]),
  );
});

Deno.test("stacks: a released table's fixed stacks go too, once nothing holds them", () => {
  const t = tracer();
  const exitId = t.exit.id;
  const other = new StackTable(
    (pcs) => pcs.map((pc) => [{ func: `main.f${pc}`, file: "/f.go", line: 1 }]),
    TEXT,
    t.registry,
  );
  for (let i = 0; i < 500; i++) t.intern(i);
  assertEquals(t.registry.get(exitId), t.exit);
  t.stacks.release();
  for (let i = 500; i < 1000; i++) other.created(0x5000 + i);
  assertEquals(t.registry.get(exitId), undefined);
  assert(t.registry.size <= CAP + 2, `${t.registry.size} kept`);
});

Deno.test("stacks: bytes per distinct stack stay under 512 when stacks go out of use (scripts/bench-state)", async () => {
  // Everything held after a GC (heap and typed arrays), through the real StackTable, EventLines and
  // LiveGoroutines, as the benchmark measures it: 131,072 stacks of 20-40 frames created and exited.
  const bench = new URL("../scripts/bench-state.ts", import.meta.url).pathname;
  const root = new URL("..", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      "--v8-flags=--expose-gc",
      bench,
      "--worker",
      "churn",
      "--dir",
      root,
    ],
    stderr: "inherit",
  }).output();
  assertEquals(r.code, 0);
  const figures = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  assert(figures.bytesPerStack < 512, `${figures.bytesPerStack.toFixed(0)} bytes per distinct stack`);
  assert(figures.resident <= 2 * 32_768, `${figures.resident} stacks kept`);
});
