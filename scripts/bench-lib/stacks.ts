/**
 * scripts/bench-state's stacks section: what gmon holds per distinct creation stack, through the real
 * StackTable, EventLines and LiveGoroutines of a checkout (this one, or --baseline's: before/after in
 * one run), each measure in a process of its own (a fresh heap), interleaved, medians.
 *
 * The stacks are those of a made-up program whose calls share most frames, as real programs' do: 20
 * to 40 frames under the probe's, an outer chain common to all, then 9 levels that each call one of 4
 * functions (4^9 paths), then a chain each path's depth cuts. Modes:
 *
 * - resident: each stack creates a goroutine that stays live, so none can be evicted: the cost of a
 *   stack that is kept (bytes per stack, after a GC, heap and typed arrays; a live goroutine's ~40
 *   bytes included), and the time to intern a new one;
 * - churn: each stack's goroutine exits at once (creation and exit lines written), as a program with
 *   endless distinct stacks does: what is held once all have been seen, in total and per stack seen.
 *
 * @module
 */
import { load, median } from "./proc.ts";

/** One measure's figures, as the worker prints them (one JSON line). */
export interface StacksFigures {
  bytesPerStack: number;
  heldMiB: number;
  usPerStack: number;
  resident: number;
}

export type StacksMode = "resident" | "churn";

const LEVELS = 9;
const CHOICES = 4;
const PID = 4242;
/** The probe's address on runtime.newproc1; the runtime's functions are at 16-byte steps from it. */
const PROBE_PC = 0x43a000;
const RUNTIME = [
  "runtime.newproc1",
  "runtime.systemstack",
  "runtime.newproc",
  "runtime.main",
  "runtime.goexit1",
];

/** The made-up program's functions: one per PC, every fifth with a call inlined into it. */
function symbolize(pcs: readonly number[]) {
  return pcs.map((pc) => {
    const k = (pc - 0x400000) >> 4;
    if (pc < 0x440000) {
      return [{
        func: RUNTIME[(pc - PROBE_PC) >> 4],
        file: "/usr/local/go/src/runtime/proc.go",
        line: 5000 + k % 97,
      }];
    }
    const pkg = `github.com/acme/orders/internal/service${k % 13}`;
    const file = `/build/src/github.com/acme/orders/internal/service${k % 13}/handler${k % 41}.go`;
    const frame = { func: `${pkg}.(*Handler${k % 7}).step${k}`, file, line: 100 + k % 900 };
    return k % 5 === 0 ? [{ func: `${pkg}.inlined${k}`, file, line: 50 + k % 300 }, frame] : [frame];
  });
}

/** The PCs of distinct stack `i`, innermost first. */
function stackPcs(i: number): number[] {
  const depth = 20 + (Math.imul(i, 0x9e3779b1) >>> 0) % 21;
  const outer = [PROBE_PC + 0x30, 0x450000, 0x450010, 0x450020];
  const paths: number[] = [];
  for (let l = 0, rest = i; l < LEVELS; l++, rest = Math.floor(rest / CHOICES)) {
    paths.push(0x460000 + (l * CHOICES + rest % CHOICES) * 16);
  }
  const inner: number[] = [];
  for (let l = 0; outer.length + paths.length + inner.length < depth; l++) {
    inner.push(0x470000 + (l * CHOICES + i % CHOICES) * 16);
  }
  const fromOuter = [...outer, ...paths, ...inner];
  return [PROBE_PC, PROBE_PC + 0x10 + 1, PROBE_PC + 0x20 + 1, ...fromOuter.reverse().map((pc) => pc + 1)];
}

/** Runs one measure with the checkout at `dir`; prints its figures. */
export async function stacksWorker(dir: string, mode: StacksMode, n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const { StackTable, StackRegistry } = await import(`${dir}/src/symbolize/stacks.ts`);
  const { EventLines } = await import(`${dir}/src/log/events.ts`);
  const { LiveGoroutines, siteOf } = await import(`${dir}/src/state/live.ts`);
  const { GoroutineRecord, Layout } = await import(`${dir}/src/bpf/record.ts`);
  const { ByteBuffer } = await import(`${dir}/src/log/bytes.ts`);
  const used = () => {
    gc();
    gc();
    const m = Deno.memoryUsage();
    return m.heapUsed + m.external;
  };
  const rec = new GoroutineRecord();
  const frames = new DataView(new ArrayBuffer(Layout.size));
  rec.words = new Uint32Array(frames.buffer);
  rec.framesWord = Layout.frames / 4;
  const before = used();
  const registry = new StackRegistry();
  const stacks = new StackTable(symbolize, undefined, registry);
  const live = new LiveGoroutines((id: number) => siteOf(registry.get(id)?.frames ?? []));
  // This checkout's eviction knows the live goroutines; main's has none.
  registry.evictWith?.(live);
  // One core for both, as gmon has (a checkout before the core ignores the argument).
  const lines = new EventLines(false, undefined, undefined, live.core);
  const exitStack = stacks.fixed([PROBE_PC + 0x40]);
  const buf = new ByteBuffer(1 << 20);
  const room = (k: number) => (buf.length + k > buf.bytes.length && buf.clear(), buf.reserve(k), buf);
  // Lines are taken as batches (put) or written into the sink's buffer (room), as a checkout's do.
  const out = { room, put: (b: Uint8Array) => room(b.length).put(b) };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const pcs = stackPcs(i);
    pcs.forEach((pc, j) => {
      frames.setUint32(Layout.frames + 8 * j, pc, true);
      frames.setUint32(Layout.frames + 8 * j + 4, 0, true);
    });
    rec.nframes = pcs.length;
    const ms = 1.8e12 + i / 100;
    const stack = stacks.intern(rec, 0, true);
    live.create(PID, i + 1, stack.id, i);
    lines.at(ms);
    lines.created(out, i + 1, stack, PID, false);
    if (mode === "churn") lines.exited(out, i + 1, exitStack, PID, live.exit(PID, i + 1, i + 5), 5);
  }
  const usPerStack = (performance.now() - t0) * 1e3 / n;
  // The drain's core (where a checkout has one) holds its tables in WebAssembly memory, outside V8's.
  const held = used() + (live.core?.x.memory.buffer.byteLength ?? 0) - before;
  const figures: StacksFigures = {
    bytesPerStack: held / n,
    heldMiB: held / 2 ** 20,
    usPerStack,
    resident: registry.size ?? registry.entries.length,
  };
  console.log(JSON.stringify(figures));
}

/** The section: `runs` interleaved measures per checkout and mode, medians. */
export async function stacksSection(
  script: string,
  checkouts: { name: string; dir: string }[],
  n: number,
  runs: number,
): Promise<void> {
  const modes: StacksMode[] = ["resident", "churn"];
  const all = new Map<string, StacksFigures[]>();
  const load0 = load();
  for (let r = 0; r < runs; r++) {
    for (const mode of modes) {
      for (const c of checkouts) {
        const key = `${c.name} ${mode}`;
        all.set(key, [...all.get(key) ?? [], await measure(script, c.dir, mode, n)]);
      }
    }
  }
  console.log(
    `\ndistinct stacks: ${n} stacks of 20-40 frames sharing most of them, through StackTable, ` +
      `EventLines (text) and LiveGoroutines; ${runs} interleaved runs, medians; load ${load0} -> ${load()}`,
  );
  for (const mode of modes) {
    for (const c of checkouts) {
      const runs = all.get(`${c.name} ${mode}`)!;
      const m = (f: (x: StacksFigures) => number) => median(runs.map(f));
      const bytes = m((x) => x.bytesPerStack).toFixed(0).padStart(6);
      const held = m((x) => x.heldMiB).toFixed(1).padStart(7);
      console.log(
        `  ${mode.padEnd(8)} ${c.name.padEnd(8)} ${bytes} bytes per stack seen, ${held} MiB held, ` +
          `${m((x) => x.resident)} stacks kept, ${m((x) => x.usPerStack).toFixed(2)} us per new stack`,
      );
    }
  }
}

async function measure(script: string, dir: string, mode: StacksMode, n: number): Promise<StacksFigures> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--cached-only",
      "--allow-all",
      "--v8-flags=--expose-gc",
      script,
      "--worker",
      mode,
      "--dir",
      dir,
      "--stacks",
      String(n),
    ],
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  if (r.code !== 0) throw new Error(`stacks worker (${dir}, ${mode}) failed: ${text}`);
  return JSON.parse(text.trim().split("\n").at(-1)!);
}
