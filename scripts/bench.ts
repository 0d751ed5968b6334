/**
 * scripts/bench: what gmon costs the program it watches, against the seed's probe design, in one run.
 *
 * - spawn: N goroutines created in a loop, each exiting at once; ns per goroutine bare, under gmon
 *   (every event logged to a file), and under the seed's design (uretprobe on runtime.newproc1, uprobe
 *   on runtime.goexit1's entry, 20-frame stacks), loaded by gmon's own loader. Runs interleaved; medians.
 * - drain: gmon's CPU per event at -level WARN (state kept, nothing logged) and with logging to a file.
 * - httpd: requests/s of a Go HTTP server (a goroutine per connection) bare, under gmon, under the seed.
 *
 * Usage: scripts/bench [--runs R] [--n GOROUTINES] [--only spawn,drain,httpd]
 */
import { parseArgs } from "node:util";
import { bpfObject } from "../src/assets.ts";
import { Probes, type ProbeSpec } from "../src/bpf/probes.ts";
import { decodeRecord, GoroutineRecord } from "../src/bpf/record.ts";
import { openTarget } from "../src/target/target.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    n: { type: "string", default: "200000" },
    only: { type: "string", default: "spawn,drain,httpd" },
  },
});
const RUNS = Number(values.runs);
const ONLY = new Set(values.only.split(","));
const N = Number(values.n);
const dec = new TextDecoder();
const tmp = Deno.makeTempDirSync({ prefix: "gmon-bench-" });

function build(name: string): string {
  const out = `${tmp}/${name}`;
  const r = new Deno.Command("go", {
    args: ["build", "-o", out, `./${name}`],
    cwd: `${root}/scripts/bench-app`,
  })
    .outputSync();
  if (r.code !== 0) throw new Error(`go build ${name}: ${dec.decode(r.stderr)}`);
  return out;
}

/** user+system CPU ms of a process so far. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
}

function rssPeakKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

/** The seed's probes for `bin`: entry uretprobe on newproc1, entry uprobe on goexit1, 20 frames. */
function seedSpecs(bin: string): ProbeSpec[] {
  const t = openTarget(bin);
  const fn = (name: string) => t.image.func(name);
  const [np, ge] = [fn("runtime.newproc1"), fn("runtime.goexit1")];
  return [
    {
      what: np.name,
      program: "gmon_create",
      offset: np.offset,
      addr: np.addr,
      retprobe: true,
      reg: "rax",
      goidOffset: t.goidOffset,
      index: 0,
      maxFrames: 20,
    },
    {
      what: ge.name,
      program: "gmon_exit",
      offset: ge.offset,
      addr: ge.addr,
      retprobe: false,
      reg: "r14",
      goidOffset: t.goidOffset,
      index: 1,
    },
  ];
}

interface Result {
  value: number;
  gmonCpuMs?: number;
  events?: number;
  lost?: number;
  rssKb?: number;
}

/** The last `n` bytes of a file (a full event log can be larger than a string may be). */
function tail(path: string, n: number): string {
  const f = Deno.openSync(path);
  try {
    const size = f.statSync().size;
    f.seekSync(Math.max(0, size - n), Deno.SeekMode.Start);
    const buf = new Uint8Array(Math.min(n, size));
    let off = 0;
    while (off < buf.length) {
      const r = f.readSync(buf.subarray(off));
      if (r === null) break;
      off += r;
    }
    return dec.decode(buf.subarray(0, off));
  } finally {
    f.close();
  }
}

async function lineOf(stream: ReadableStream<Uint8Array>): Promise<{ first: string; rest: Promise<string> }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  const i = buf.indexOf("\n");
  const rest = (async () => {
    let more = buf.slice(i + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { first: buf.slice(0, i), rest };
}

async function waitForFile(path: string, needle: string, ms = 30_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    let text = "";
    try {
      text = Deno.readTextFileSync(path);
    } catch { /* not yet */ }
    if (text.includes(needle)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${needle} in ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One run of `bin args` in `mode`; the app prints one number (its measure) when done. */
async function runOnce(mode: string, bin: string, args: string[], level = "INFO"): Promise<Result> {
  const app = new Deno.Command(bin, { args: ["-wait", ...args], stdin: "piped", stdout: "piped" }).spawn();
  const { rest } = await lineOf(app.stdout); // "ready"
  let gmon: Deno.ChildProcess | undefined;
  let probes: Probes | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const log = `${tmp}/gmon.log`;
  let events = 0;
  if (mode === "gmon") {
    Deno.writeTextFileSync(log, "");
    gmon = new Deno.Command("bash", {
      // Not -pid: gmon would end with the process, before its CPU time is read.
      args: ["-c", `exec "$0" -path "$1" -level "$2" > "$3"`, `${root}/scripts/gmon`, bin, level, log],
    }).spawn();
    if (level === "INFO") await waitForFile(log, "msg=attached");
    else await new Promise((r) => setTimeout(r, 2000));
  } else if (mode === "seed") {
    probes = Probes.load(bpfObject, 64 << 20, () => {});
    for (const s of seedSpecs(bin)) probes.attach(bin, app.pid, s);
    const rec = new GoroutineRecord();
    const sink = (v: DataView, at: number, len: number) => {
      if (decodeRecord(v, at, len, rec) === null) events++;
    };
    const p = probes;
    timer = setInterval(() => p.ring.drain(sink), 5);
  }
  const cpu0 = gmon ? cpuMs(gmon.pid) : 0;
  const w = app.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
  const value = Number((await rest).trim());
  await app.status;
  const result: Result = { value };
  if (gmon) {
    // Let gmon drain what is queued, then stop it and read its summary.
    await new Promise((r) => setTimeout(r, 300));
    result.gmonCpuMs = cpuMs(gmon.pid) - cpu0;
    result.rssKb = rssPeakKb(gmon.pid);
    gmon.kill("SIGINT");
    await gmon.status;
    const text = tail(log, 1 << 16);
    const m = /msg=detached created=(\d+) exited=(\d+) live=\d+ lost=(\d+)/.exec(text);
    if (m) {
      result.events = Number(m[1]) + Number(m[2]);
      result.lost = Number(m[3]);
    } else {
      // At WARN the summary isn't logged: every goroutine's two events, less any loss gmon warned of.
      result.lost = Number([...text.matchAll(/msg="events lost" lost=(\d+)/g)].at(-1)?.[1] ?? 0);
      result.events = 2 * Number(args[args.indexOf("-n") + 1]) - result.lost;
    }
  }
  if (probes) {
    clearInterval(timer);
    probes.ring.drain(() => events++);
    result.lost = probes.lost();
    result.events = events;
    probes.close();
  }
  return result;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function compare(name: string, bin: string, args: string[], unit: string) {
  const modes = ["bare", "gmon", "seed"];
  const all: Record<string, Result[]> = { bare: [], gmon: [], seed: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const m of modes) all[m].push(await runOnce(m, bin, args));
  }
  const med = Object.fromEntries(modes.map((m) => [m, median(all[m].map((x) => x.value))]));
  console.log(`\n${name} (${RUNS} interleaved runs, medians)`);
  for (const m of modes) {
    const extra = m === "bare" ? "" : `  lost ${all[m].reduce((a, x) => a + (x.lost ?? 0), 0)}`;
    console.log(`  ${m.padEnd(5)} ${med[m].toFixed(1).padStart(10)} ${unit}${extra}`);
  }
  return med;
}

const spawn = build("spawn");
const httpd = build("httpd");
console.log(
  `gmon bench: ${Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1]}, ` +
    `${navigator.hardwareConcurrency} CPUs, kernel ${Deno.osRelease()}, ${new Date().toISOString()}`,
);

if (ONLY.has("spawn")) {
  const s = await compare(`spawn: ${N} goroutines`, spawn, ["-n", String(N)], "ns/goroutine");
  const added = { gmon: s.gmon - s.bare, seed: s.seed - s.bare };
  console.log(
    `  added per goroutine: gmon ${(added.gmon / 1000).toFixed(2)} us, seed ${
      (added.seed / 1000).toFixed(2)
    } us`,
  );
  console.log(`  ratio gmon/seed added cost: ${(added.gmon / added.seed).toFixed(3)} (goal <= 0.25)`);
}

if (ONLY.has("drain")) {
  console.log(`\ndrain: gmon CPU per event, ${N * 5} goroutines`);
  for (const level of ["WARN", "INFO"]) {
    const r = await runOnce("gmon", spawn, ["-n", String(N * 5)], level);
    const events = r.events ?? 0;
    const perSec = events / ((r.gmonCpuMs ?? 1) / 1000);
    console.log(
      `  -level ${level.padEnd(4)} ${events} events, lost ${r.lost}, gmon CPU ${r.gmonCpuMs} ms ` +
        `(${(perSec / 1e6).toFixed(2)} M events per CPU-second), peak RSS ${
          (r.rssKb! / 1024).toFixed(0)
        } MiB`,
    );
  }
}

if (ONLY.has("httpd")) {
  const h = await compare(
    "httpd: 8 clients, new connection per request, 2 s",
    httpd,
    ["-c", "8", "-d", "2s"],
    "req/s",
  );
  console.log(
    `  gmon ${(h.gmon / h.bare * 100).toFixed(1)}% of bare, seed ${
      (h.seed / h.bare * 100).toFixed(1)
    }% of bare`,
  );
}
Deno.removeSync(tmp, { recursive: true });
