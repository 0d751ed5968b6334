/**
 * scripts/bench-fleet: what one host-wide gmon (-all) costs in memory as it traces more processes
 * and more distinct executables. For each case it starts P processes of E executables (copies of
 * test/fixtures/leaker, each with 20 goroutines leaked and parked), starts gmon -all limited to them
 * (-exe), waits until it traces all P and 30 s more, then reads its memory from /proc: VmRSS, its anonymous
 * part (gmon's own) and shared part (Deno's binary, the ring buffer), and the peak (VmHWM).
 * The first case traces none: gmon's own floor. Cases run one after another, each with a fresh gmon.
 *
 * Usage: scripts/bench-fleet [--procs 50] [--exes 1,5,10]
 */
import { parseArgs } from "node:util";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: { procs: { type: "string", default: "50" }, exes: { type: "string", default: "1,5,10" } },
});
const dec = new TextDecoder();
const enc = new TextEncoder();

function build(dir: string): string {
  const out = `${dir}/leaker`;
  const r = new Deno.Command("go", { args: ["build", "-o", out, "."], cwd: `${root}/test/fixtures/leaker` })
    .outputSync();
  if (r.code !== 0) throw new Error(`go build leaker: ${dec.decode(r.stderr)}`);
  return out;
}

/** VmRSS and VmHWM of `pid`, MB. */
interface Memory {
  rss: number;
  /** gmon's own: its heaps, the WASM module's memory. */
  anon: number;
  /** Shared: Deno's binary as mapped, and the BPF ring buffer (the kernel's memory, mapped once). */
  file: number;
  hwm: number;
}

/** VmRSS, its anonymous and file parts, and VmHWM of `pid`, MB. */
function memory(pid: number): Memory {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)![1]) / 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem"), hwm: kb("VmHWM") };
}

/** The pid of the deno process behind scripts/gmon (it execs deno: the same pid). */
async function measure(tag: string, procs: number): Promise<Memory> {
  // INFO: msg=attached (what it traces) is an INFO line, on stdout; the lines after it are drained unread.
  const gmon = new Deno.Command(`${root}/scripts/gmon`, {
    args: ["-all", "-exe", `*${tag}*`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = gmon.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/msg=attached.*\n/.test(text)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`gmon ended: ${text}`);
    text += value;
  }
  const drain = (async () => {
    while (!(await lines.read()).done) { /* unread */ }
  })();
  const traced = Number(/ processes=(\d+)/.exec(text)![1]);
  if (traced !== procs) throw new Error(`gmon traces ${traced} processes, not ${procs}: ${text}`);
  // Settle: the first readings of goroutines (adoption) are done, the heap has had a GC or two and
  // gmon has given what they freed back to the kernel (every 10 s).
  await new Promise((r) => setTimeout(r, 30_000));
  const m = memory(gmon.pid);
  gmon.kill("SIGINT");
  await gmon.status;
  await drain;
  return m;
}

async function fleetCase(bin: string, dir: string, procs: number, exes: number) {
  const tag = `bfleet${exes}x${Math.floor(Math.random() * 1e6)}`;
  const bins = Array.from({ length: exes }, (_, i) => {
    const p = `${dir}/${tag}-${i}`;
    Deno.copyFileSync(bin, p);
    Deno.chmodSync(p, 0o755);
    return p;
  });
  const children = Array.from(
    { length: procs },
    (_, i) =>
      new Deno.Command(bins[i % exes], { args: ["-leak", "20"], stdin: "piped", stdout: "null" }).spawn(),
  );
  for (const c of children) {
    const w = c.stdin.getWriter();
    await w.write(enc.encode("leak\n"));
    w.releaseLock();
  }
  try {
    return await measure(tag, procs);
  } finally {
    for (const c of children) {
      await c.stdin.close().catch(() => {});
      await c.status;
    }
  }
}

const dir = Deno.makeTempDirSync({ prefix: "gmon-bench-fleet-" });
const bin = build(dir);
const procs = Number(values.procs);
const up = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(
  `gmon -all memory (load average ${up}); leaker is ${(Deno.statSync(bin).size / 2 ** 20).toFixed(1)} MB`,
);
console.log("processes  executables  VmRSS MB  anonymous MB  shared MB  VmHWM MB");
const row = (p: number, e: number, m: Memory, note = "") =>
  console.log(
    [
      String(p).padStart(9),
      String(e).padStart(11),
      m.rss.toFixed(1).padStart(8),
      m.anon.toFixed(1).padStart(12),
      m.file.toFixed(1).padStart(9),
      m.hwm.toFixed(1).padStart(8),
    ].join("  ") + note,
  );
const floor = await measure("bfleet-none", 0);
row(0, 0, floor);
row(1, 1, await fleetCase(bin, dir, 1, 1));
for (const exes of values.exes.split(",").map(Number)) {
  const m = await fleetCase(bin, dir, procs, exes);
  row(procs, exes, m, `   (+${((m.anon - floor.anon) / exes).toFixed(1)} MB anonymous per executable)`);
}
Deno.removeSync(dir, { recursive: true });
