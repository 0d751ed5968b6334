/**
 * scripts/bench-attach: how gmon copes with a big stripped Go binary (no DWARF, no symbol table: only
 * .gopclntab and .go.buildinfo, as every distribution ships them).
 *
 * - time from start to `msg=attached`, and gmon's peak RSS then (median of R runs);
 * - symbolization: frames/s cold (first sight of each PC, through the WASM module) and cached (an
 *   already-seen stack interned again, as every repeat creation is).
 *
 * Usage: scripts/bench-attach [--runs R] [BINARY]   (default /usr/bin/prometheus, from Debian's package)
 */
import { parseArgs } from "node:util";
import { GoroutineRecord, Layout } from "../src/bpf/record.ts";
import { StackTable } from "../src/symbolize/stacks.ts";
import { TargetImage } from "../src/target/wasm.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "5" } },
  allowPositionals: true,
});
const bin = positionals[0] ?? "/usr/bin/prometheus";
const runs = Number(values.runs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const size = Deno.statSync(bin).size;
console.log(`gmon bench-attach: ${bin}, ${(size / 1e6).toFixed(1)} MB`);

const times: number[] = [];
const rss: number[] = [];
const anon: number[] = [];
const shared: number[] = [];
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  const child = new Deno.Command(`${root}/scripts/gmon`, {
    args: ["-path", bin],
    stdout: "piped",
    stderr: "inherit",
  })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("msg=attached")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`gmon ended before attaching: ${text}`);
    text += value;
  }
  times.push(performance.now() - start);
  const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  rss.push(kb("VmHWM") / 1024);
  anon.push(kb("RssAnon") / 1024);
  shared.push((kb("RssFile") + kb("RssShmem")) / 1024);
  child.kill("SIGINT");
  await reader.cancel();
  await child.status;
}
console.log(
  `  start to attached: median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(", ")})`,
);
console.log(
  `  gmon RSS at attach: peak ${median(rss).toFixed(0)} MiB; now ${median(anon).toFixed(0)} MiB anonymous ` +
    `(heap, WASM) + ${median(shared).toFixed(0)} MiB file/shared (deno's binary, the BPF ring buffer)`,
);

// Symbolization: PCs of real call sites (return addresses) across the whole binary.
const image = TargetImage.open(Deno.readFileSync(bin));
const sites = image.callers("runtime.newobject", "");
const pcs = sites.map((s) => s.addr + s.len);
let t0 = performance.now();
let frames = 0;
for (let i = 0; i < pcs.length; i += 64) {
  for (const f of image.symbolize(pcs.slice(i, i + 64).map((pc) => pc - 1))) frames += f.length;
}
const coldMs = performance.now() - t0;
console.log(
  `  cold: ${pcs.length} PCs -> ${frames} frames in ${coldMs.toFixed(0)} ms ` +
    `(${(frames / coldMs * 1000 / 1e6).toFixed(2)} M frames/s)`,
);

// Cached: the same 32-frame stacks interned again and again, read from a record in place.
const DEPTH = 32;
const STACKS = 64;
const buf = new DataView(new ArrayBuffer(Layout.headerSize + DEPTH * 8));
const rec = new GoroutineRecord();
rec.words = new Uint32Array(buf.buffer);
rec.framesWord = Layout.frames / 4;
rec.nframes = DEPTH;
const table = new StackTable((p) => image.symbolize(p));
const fill = (s: number) => {
  for (let i = 0; i < DEPTH; i++) {
    const pc = pcs[(s * DEPTH + i) % pcs.length];
    buf.setUint32(Layout.frames + i * 8, pc % 0x1_0000_0000, true);
    buf.setUint32(Layout.frames + i * 8 + 4, Math.floor(pc / 0x1_0000_0000), true);
  }
};
for (let s = 0; s < STACKS; s++) {
  fill(s);
  table.intern(rec, 0, false);
}
const N = 200_000;
t0 = performance.now();
for (let n = 0; n < N; n++) {
  if (n % 1000 === 0) fill(n / 1000 % STACKS);
  table.intern(rec, 0, false);
}
const cachedMs = performance.now() - t0;
console.log(
  `  cached: ${N} stacks of ${DEPTH} frames in ${cachedMs.toFixed(0)} ms ` +
    `(${(N * DEPTH / cachedMs * 1000 / 1e6).toFixed(1)} M frames/s)`,
);
console.log(`  bench process RSS: ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
