/**
 * Host-wide mode (issue 13) end to end with real eBPF: one gmon -all finds every Go program, those
 * started before and after it, in containers made of real namespaces and an overlay root, and labels
 * what it reports so that a real Prometheus can add the leak up across them.
 *
 * Every gmon here is limited with -exe to this run's executables (named with a random tag): the tests
 * of other checkouts may run Go programs on the same host meanwhile.
 */
import { assert, assertEquals } from "./assert.ts";
import { Container } from "./container.ts";
import { attrs, buildFixture, checkAllSeen, Gmon, leftovers, parseSpawned, root } from "./harness.ts";
import { freePort, until } from "./leaker.ts";
import { promtool } from "./promtool.ts";
import { buildWith } from "./toolchains.ts";
import { withGoVersion } from "./goversion.ts";

const enc = new TextEncoder();

/** A program that waits for a line on stdin before it does its work, its output gathered. */
class Waiting {
  readonly child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out: Promise<string>;
  #text = "";

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#writer = child.stdin.getWriter();
    this.#out = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) this.#text += chunk;
      return this.#text;
    })();
  }

  static start(bin: string, args: string[]): Waiting {
    return new Waiting(new Deno.Command(bin, { args, stdin: "piped", stdout: "piped" }).spawn());
  }

  /** Waits for its first line (the program's "ready"). */
  ready(): Promise<void> {
    return until("the program's ready line", () => Promise.resolve(this.#text.includes("\n")), 20_000);
  }

  /** Sends `line`; with `end`, closes its stdin after. */
  async send(line: string, end = false): Promise<void> {
    await this.#writer.write(enc.encode(line + "\n"));
    if (end) await this.#writer.close();
  }

  /** Closes its stdin and returns its whole output once it ended. */
  async finish(): Promise<string> {
    await this.#writer.close().catch(() => {});
    await this.child.status;
    return await this.#out;
  }

  get text(): string {
    return this.#text;
  }
}

/** A copy of `bin` under a name of this run. */
function copyAs(bin: string, path: string): string {
  Deno.copyFileSync(bin, path);
  Deno.chmodSync(path, 0o755);
  return path;
}

/** gmon's lines about process `pid`. */
function linesOf(gmon: Gmon, pid: number): string[] {
  return gmon.lines.filter((l) => attrs(l).get("pid") === String(pid));
}

Deno.test("fleet: -all finds every Go program, before and after it, in a container too, with the events -path gives", async () => {
  const tag = `fleet${Math.floor(Math.random() * 1e9)}`;
  const dir = Deno.makeTempDirSync();
  const spawner = buildFixture("spawner");
  const old = buildWith("go1.21", `${root}/test/fixtures/spawner`, []);
  assert("path" in old, `no go1.21: ${"skip" in old ? old.skip : ""}`);
  const bins = {
    plain: copyAs(spawner, `${dir}/${tag}-plain`),
    stripped: copyAs(buildFixture("spawner", ["-ldflags=-s -w"]), `${dir}/${tag}-stripped`),
    pie: copyAs(buildFixture("spawner", ["-buildmode=pie"]), `${dir}/${tag}-pie`),
    old: copyAs(old.path, `${dir}/${tag}-go121`),
    unknown: copyAs(
      await withGoVersion(buildFixture("spawner", ["-ldflags=-s -w"]), "go1.99.1"),
      `${dir}/${tag}-unknown`,
    ),
    notGo: copyAs("/bin/sleep", `${dir}/${tag}-sleep`),
    static: copyAs(buildFixture("spawner", [], { CGO_ENABLED: "0" }), `${dir}/${tag}-static`),
  };
  const args = ["-wait", "-rounds", "2"];
  const before = [
    Waiting.start(bins.plain, args),
    Waiting.start(bins.stripped, args),
    Waiting.start(bins.static, args),
  ];
  const notGo = new Deno.Command(bins.notGo, { args: ["60"] }).spawn();
  await Promise.all(before.map((w) => w.ready()));
  const port = freePort();
  const gmon = new Gmon(["-all", "-exe", `*${tag}*`, "-pprof-port", String(port)]);
  const after: Waiting[] = [];
  let box: Container | null = null;
  try {
    const attached = attrs(await gmon.attached());
    assertEquals([attached.get("all"), attached.get("executables"), attached.get("processes")], [
      "true",
      "3",
      "3",
    ]);
    for (const bin of [bins.pie, bins.old]) after.push(Waiting.start(bin, args));
    // The container runs the host's own file (a volume): one executable, seen by two paths.
    box = new Container(bins.static, `${tag}-box`, args, true);
    const boxed = new Waiting(box.child);
    const boxPid = await box.hostPid();
    const unknown = [Waiting.start(bins.unknown, args), Waiting.start(bins.unknown, args)];
    await Promise.all([...after, boxed, ...unknown].map((w) => w.ready()));
    // Found by their exec: each new executable once.
    for (const w of after) {
      await gmon.waitFor((l) => l.includes(" msg=tracing ") && l.includes(` pid=${w.child.pid}`), "tracing");
    }
    for (const w of [...before, ...after, boxed]) await w.send("go");
    const outputs = await Promise.all([...before, ...after, boxed].map((w) => w.finish()));
    const pids = [...before, ...after].map((w) => w.child.pid).concat(boxPid);
    for (const [i, pid] of pids.entries()) {
      const spawned = parseSpawned(outputs[i]);
      assertEquals(spawned.length, 8, outputs[i]);
      const last = spawned.at(-1)!.goid;
      await gmon.waitFor(
        (l) => l.includes(`goroutine_id=${last} `) && l.includes(`pid=${pid} `) && l.includes("goexit1"),
        `the exit of goroutine ${last} of ${pid} (program ${i}); gmon said: ${
          gmon.lines.filter((l) => !l.includes("msg=runtime")).join("\n")
        }`,
      );
      checkAllSeen(linesOf(gmon, pid), spawned);
    }
    // Attached once per file: the container's process ran an executable already traced.
    assertEquals(gmon.lines.filter((l) => l.includes(" msg=tracing ")).length, 5, gmon.lines.join("\n"));
    // Lines tell programs apart: executable (as the process sees it) and container.
    const boxLine = attrs(linesOf(gmon, boxPid).find((l) => l.includes("msg=runtime.newproc1"))!);
    assertEquals([boxLine.get("exe"), boxLine.get("container")], [box!.exe, box!.id]);
    const plainLine = attrs(
      linesOf(gmon, before[0].child.pid).find((l) => l.includes("msg=runtime.newproc1"))!,
    );
    assertEquals([plainLine.get("exe"), plainLine.has("container")], [bins.plain, false]);
    // Not Go: passed over quietly; Go of an unknown release: said once, passed over, never fatal.
    const warned = gmon.lines.filter((l) => l.includes(' msg="can\'t trace"'));
    assertEquals(warned.length, 1, gmon.lines.join("\n"));
    assert(attrs(warned[0]).get("exe") === bins.unknown && warned[0].includes("go1.99.1"), warned[0]);
    assert(!gmon.lines.some((l) => l.includes(bins.notGo)), gmon.lines.join("\n"));
    for (const w of unknown) await w.finish();
    assertEquals(await gmon.stop(), 0);
    const detached = attrs(gmon.lines.find((l) => l.includes(" msg=detached "))!);
    assertEquals(detached.get("lost"), "0");
    assertEquals(gmon.stderr, "");
  } finally {
    await gmon.stop("SIGKILL");
    notGo.kill();
    await notGo.status;
    for (const w of [...before, ...after]) {
      try {
        w.child.kill("SIGKILL");
      } catch { /* gone */ }
      await w.child.status;
    }
    await box?.remove();
  }
  assertEquals(leftovers(), []);
});

/** Debian's prometheus, scraping `target` every second; its HTTP API's address. */
async function startPrometheus(target: string): Promise<{ api: string; stop: () => Promise<void> }> {
  const dir = Deno.makeTempDirSync({ prefix: "gmon-prom-" });
  Deno.writeTextFileSync(
    `${dir}/prometheus.yml`,
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gmon\n    static_configs:\n      - targets: ["${target}"]\n`,
  );
  const port = freePort();
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const api = `http://127.0.0.1:${port}`;
  await until("prometheus ready", async () => {
    try {
      return (await fetch(`${api}/-/ready`).then((r) => r.text())).includes("Ready");
    } catch {
      return false;
    }
  }, 30_000);
  return {
    api,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** One number from Prometheus's query API (the sum of a vector's values; NaN when empty). */
async function query(api: string, promql: string): Promise<number> {
  const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`).then((r) => r.json());
  const result = r.data?.result ?? [];
  return result.length === 0
    ? NaN
    : result.reduce((n: number, s: { value: [number, string] }) => n + Number(s.value[1]), 0);
}

Deno.test("fleet: a real Prometheus scraping gmon adds the live goroutines at the leak site up across programs", async () => {
  const tag = `fleet${Math.floor(Math.random() * 1e9)}`;
  const dir = Deno.makeTempDirSync();
  const leaker = buildFixture("leaker");
  const a = copyAs(leaker, `${dir}/${tag}-a`);
  const b = copyAs(leaker, `${dir}/${tag}-b`);
  const first = Waiting.start(a, ["-leak", "10", "-churn", "5"]);
  await first.ready();
  const port = freePort();
  const gmon = new Gmon(["-all", "-exe", `*${tag}*`, "-pprof-port", String(port), "-level", "WARN"]);
  const prom = await startPrometheus(`127.0.0.1:${port}`);
  const later = Waiting.start(b, ["-leak", "20", "-churn", "5"]);
  const box = new Container(buildFixture("leaker", [], { CGO_ENABLED: "0" }), `${tag}-c`, [
    "-leak",
    "30",
    "-churn",
    "5",
  ]);
  const boxed = new Waiting(box.child);
  try {
    await gmon.attached();
    await Promise.all([later.ready(), boxed.ready()]);
    for (const w of [first, later, boxed]) await w.send("leak");
    await until(
      "all leaked",
      () => Promise.resolve([first, later, boxed].every((w) => w.text.includes("leaked"))),
    );
    const site = 'gmon_goroutines_live{site="main.leak"}';
    await until(
      "Prometheus sees 60 leaked",
      async () => await query(prom.api, `sum(${site})`) === 60,
      30_000,
    );
    assertEquals(await query(prom.api, `count(count by (exe) (${site}))`), 3);
    assertEquals(
      await query(prom.api, `sum(gmon_goroutines_live{site="main.leak",container="${box.id}"})`),
      30,
    );
    assertEquals(await query(prom.api, `sum(gmon_goroutines_live{site="main.leak",exe="${b}"})`), 20);
  } finally {
    await prom.stop();
    await gmon.stop("SIGKILL");
    for (const w of [first, later]) await w.finish();
    await box.remove();
  }
  assertEquals(leftovers(), []);
});

Deno.test("fleet: 50 traced processes: /metrics stays valid, and an ended process's series go", async () => {
  const tag = `fleet${Math.floor(Math.random() * 1e9)}`;
  const dir = Deno.makeTempDirSync();
  const leaker = buildFixture("leaker");
  const bins = Array.from({ length: 5 }, (_, i) => copyAs(leaker, `${dir}/${tag}-${i}`));
  const procs = Array.from(
    { length: 50 },
    (_, i) => Waiting.start(bins[i % 5], ["-leak", "3", "-churn", "2"]),
  );
  await Promise.all(procs.map((w) => w.ready()));
  const port = freePort();
  const gmon = new Gmon(["-all", "-exe", `*${tag}*`, "-pprof-port", String(port), "-level", "WARN"]);
  try {
    const attached = attrs(await gmon.attached());
    assertEquals([attached.get("executables"), attached.get("processes")], ["5", "50"]);
    for (const w of procs) await w.send("leak");
    const metrics = async () => await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    const leakSeries = (text: string) =>
      text.split("\n").filter((l) => l.startsWith("gmon_goroutines_live{") && l.includes('site="main.leak"'));
    // A series shows at a process's first leak: wait for all three of each.
    const allLeaked = (series: string[]) => series.length === 50 && series.every((l) => / 3$/.test(l));
    await until("every process's leak series", async () => allLeaked(leakSeries(await metrics())), 20_000);
    const text = await metrics();
    const check = await promtool(text);
    assertEquals(check.code, 0, check.out);
    assert(leakSeries(text).every((l) => / 3$/.test(l)), leakSeries(text).join("\n"));
    await procs[0].finish();
    const gone = procs[0].child.pid;
    await until(
      "the ended process's series gone",
      async () => !(await metrics()).includes(`pid="${gone}"`),
      10_000,
    );
    assertEquals(leakSeries(await metrics()).length, 49);
  } finally {
    await gmon.stop("SIGKILL");
    await Promise.all(procs.map((w) => w.finish()));
  }
  assertEquals(leftovers(), []);
});
