/**
 * scripts/bench-fleet: what one host-wide gmon (-all) costs in memory as it traces more processes
 * and more distinct executables. For each case it starts P processes of E executables (copies of
 * test/fixtures/leaker, each with 20 goroutines leaked and parked), starts gmon -all limited to them
 * (-exe), waits until it traces all P, then reads gmon's RSS (VmRSS) and peak (VmHWM) from /proc.
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
function memory(pid: number): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)![1]);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** The pid of the deno process behind scripts/gmon (it execs deno: the same pid). */
async function measure(tag: string, procs: number): Promise<{ rss: number; hwm: number; traced: number }> {
  const gmon = new Deno.Command(`${root}/scripts/gmon`, {
    args: ["-all", "-exe", `*${tag}*`, "-level", "WARN"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = gmon.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("msg=attached")) {
    const { value, done } = await stderr.read();
    if (done) throw new Error(`gmon ended: ${text}`);
    text += value;
  }
  const traced = Number(/ processes=(\d+)/.exec(text)![1]);
  if (traced !== procs) throw new Error(`gmon traces ${traced} processes, not ${procs}: ${text}`);
  // Settle: the first readings of goroutines (adoption) are done; the heap has had a GC or two.
  await new Promise((r) => setTimeout(r, 3000));
  const m = memory(gmon.pid);
  gmon.kill("SIGINT");
  await gmon.status;
  await stderr.cancel();
  return { ...m, traced };
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
console.log("processes  executables  VmRSS MB  VmHWM MB");
const floor = await measure("bfleet-none", 0);
console.log(
  `${"0".padStart(9)}  ${"0".padStart(11)}  ${floor.rss.toFixed(1).padStart(8)}  ${
    floor.hwm.toFixed(1).padStart(8)
  }`,
);
for (const exes of values.exes.split(",").map(Number)) {
  const m = await fleetCase(bin, dir, procs, exes);
  const per = (m.rss - floor.rss) / exes;
  console.log(
    `${String(procs).padStart(9)}  ${String(exes).padStart(11)}  ${m.rss.toFixed(1).padStart(8)}  ${
      m.hwm.toFixed(1).padStart(8)
    }   (+${per.toFixed(1)} MB per executable over the floor)`,
  );
}
Deno.removeSync(dir, { recursive: true });
