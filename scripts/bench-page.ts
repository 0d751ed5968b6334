/**
 * What the live page costs gmon: `scripts/bench-page [--sites S] [--per N] [--seconds T]` (defaults:
 * 500 sites, 200 goroutines each, so 100k live; 30 s windows). It builds a Go program whose S
 * functions each start N goroutines that block, traces it with gmon (-level WARN: no event lines), and
 * reads gmon's CPU time from /proc over a window without a browser, then over one with headless
 * Chromium showing the page (it refreshes about once a second). Prints both, their difference (the
 * page's cost, CPU seconds per second) and the time of one /api/overview answer. Needs root, like gmon.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Browser } from "../test/cdp.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sites: { type: "string", default: "500" },
    per: { type: "string", default: "200" },
    seconds: { type: "string", default: "30" },
  },
});
const SITES = Number(values.sites);
const PER = Number(values.per);
const SECONDS = Number(values.seconds);
const root = new URL("..", import.meta.url).pathname;
const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s

function sh(cmd: string, args: string[], cwd?: string): string {
  const r = new Deno.Command(cmd, { args, cwd, stderr: "inherit" }).outputSync();
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(r.stdout);
}

/** A Go program with `SITES` creation sites, each leaving `PER` goroutines blocked. */
function buildTarget(dir: string): string {
  let src = 'package main\n\nimport (\n\t"fmt"\n\t"time"\n)\n\nvar block = make(chan struct{})\n\n';
  for (let i = 0; i < SITES; i++) {
    src += `func site${i}(n int) {\n\tfor i := 0; i < n; i++ {\n\t\tgo func() { <-block }()\n\t}\n}\n\n`;
  }
  src += "func main() {\n";
  for (let i = 0; i < SITES; i++) src += `\tsite${i}(${PER})\n`;
  src += '\tfmt.Println("ready")\n\ttime.Sleep(24 * time.Hour)\n}\n';
  Deno.writeTextFileSync(`${dir}/main.go`, src);
  Deno.writeTextFileSync(`${dir}/go.mod`, "module benchpage\n\ngo 1.21\n");
  sh("go", ["build", "-o", `${dir}/target`, "."], dir);
  return `${dir}/target`;
}

/** utime + stime of `pid` and its threads, seconds. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / TICK;
}

async function window(pid: number, seconds: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

const port = (() => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
})();
const base = `http://127.0.0.1:${port}`;
const dir = Deno.makeTempDirSync({ prefix: "gmon-bench-page-" });
let gmon: Deno.ChildProcess | undefined;
let target: Deno.ChildProcess | undefined;
let browser: Browser | undefined;
try {
  const bin = buildTarget(dir);
  gmon = new Deno.Command(`${root}scripts/gmon`, {
    args: ["-path", bin, "-pprof-port", String(port), "-level", "WARN"],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // Attached once the endpoint answers (it is bound just before the probes are attached, so wait a
  // little more for the attach itself).
  for (;;) {
    const ok = await fetch(`${base}/api/overview`).then(
      (r) => r.body?.cancel().then(() => r.ok),
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 2000));
  target = new Deno.Command(bin, { stdout: "null", stdin: "null" }).spawn();
  const want = SITES * PER;
  for (;;) {
    const o = await (await fetch(`${base}/api/overview`)).json();
    if (o.totals.live >= want) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`target: ${SITES} sites x ${PER} = ${want} goroutines live (pid ${target.pid})`);
  console.log(`uptime: ${sh("uptime", []).trim()}`);

  // One answer, as the page asks for it every second.
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    bytes = (await (await fetch(`${base}/api/overview?pid=all&sort=live&range=all`)).text()).length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`/api/overview: median ${times[10].toFixed(1)} ms, ${bytes} bytes`);

  const idle = await window(gmon.pid, SECONDS);
  console.log(`gmon CPU without the page: ${(idle * 100).toFixed(2)}% of a CPU (${SECONDS} s)`);
  browser = await Browser.launch();
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.waitFor("the table", `document.querySelectorAll("tr.site-row").length > 0`);
  const open = await window(gmon.pid, SECONDS);
  const polls = await page.eval<number>("performance.getEntriesByType('resource').length");
  console.log(
    `gmon CPU with the page open: ${(open * 100).toFixed(2)}% of a CPU (${SECONDS} s, ${polls} requests)`,
  );
  console.log(`the page's refresh cost in gmon: ${((open - idle) * 1000).toFixed(1)} ms of CPU per second`);
  console.log(`uptime: ${sh("uptime", []).trim()}`);
} finally {
  await browser?.close();
  try {
    target?.kill("SIGKILL");
    await target?.status;
  } catch { /* gone */ }
  try {
    gmon?.kill("SIGINT");
    await gmon?.status;
  } catch { /* gone */ }
  Deno.removeSync(dir, { recursive: true });
}
