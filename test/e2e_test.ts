/**
 * gmon end to end with real eBPF: a Go fixture built in this run is traced, and every goroutine it
 * reports must show up as a creation (with its go statement in the stack) and an exit.
 */
import { assert, assertEquals } from "./assert.ts";
import {
  attrs,
  buildFixture,
  checkAllSeen,
  events,
  Gmon,
  gmonBin,
  leftovers,
  parseSpawned,
  runGmon,
  runSpawner,
  stackOf,
} from "./harness.ts";

const TIME = /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=/;

Deno.test("e2e: every goroutine is seen created at its go statement and exiting; nothing left attached", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Gmon(["-path", bin]);
  try {
    const attached = await gmon.attached();
    assert(TIME.test(attached), attached);
    const a = attrs(attached);
    assertEquals([a.get("level"), a.get("path"), a.get("pid")], ["INFO", bin, "any"]);
    const goVersion = new TextDecoder().decode(
      new Deno.Command("go", { args: ["env", "GOVERSION"] }).outputSync().stdout,
    ).trim();
    assertEquals(a.get("go_version"), goVersion);

    const spawned = await runSpawner(bin, ["-rounds", "10"]);
    assertEquals(spawned.length, 40);
    assertEquals(
      new Set(spawned.map((s) => s.func)),
      new Set(["main.spawnNamed", "main.spawnClosure", "main.spawnMethodValue", "main.recurse"]),
    );
    const last = spawned.at(-1)!.goid;
    await gmon.waitFor((l) => l.includes(`msg=runtime.goexit1 goroutine_id=${last} `), `exit of ${last}`);
    assertEquals(await gmon.stop(), 0);
    checkAllSeen(gmon.lines, spawned);

    for (const line of gmon.lines) assert(TIME.test(line), `not a slog line: ${line}`);
    const { created } = events(gmon.lines);
    const deep = spawned.find((s) => s.func === "main.recurse")!;
    const stack = stackOf(created.get(deep.goid)!);
    assertEquals(stack[0].startsWith("runtime.newproc at "), true, stack[0]);
    assertEquals(stack.filter((f) => f.startsWith("main.recurse at ")).length, 41);
    const pids = new Set([...created.values()].map((c) => c.get("pid")));
    assertEquals(pids.size, 1);

    const detached = attrs(gmon.lines.at(-1)!);
    assertEquals(detached.get("msg"), "detached");
    assert(Number(detached.get("created")) >= 40, gmon.lines.at(-1));
    assertEquals(detached.get("lost"), "0");
    assertEquals(gmon.stderr, "");
  } finally {
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("e2e: stack ids name distinct stacks; exits carry goexit1's one frame", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Gmon(["-path", bin]);
  try {
    await gmon.attached();
    const spawned = await runSpawner(bin, ["-rounds", "3"]);
    await gmon.waitFor(
      (l) => l.includes(`goroutine_id=${spawned.at(-1)!.goid} `) && l.includes("goexit1"),
      "exits",
    );
    assertEquals(await gmon.stop("SIGTERM"), 0);
    const { created, exited } = events(gmon.lines);
    const byId = new Map<string, string>();
    for (const c of created.values()) {
      const text = stackOf(c).join("|");
      const id = c.get("stack_id")!;
      assertEquals(byId.get(id) ?? text, text, `stack_id ${id} names two stacks`);
      byId.set(id, text);
    }
    const ids = new Set(spawned.map((s) => created.get(s.goid)!.get("stack_id")));
    assertEquals(ids.size, 4, "one stack per spawn site, the same each round");
    for (const e of exited.values()) {
      const stack = stackOf(e);
      assertEquals(stack.length, 1);
      assert(/^runtime\.goexit1 at .+\/runtime\/proc\.go:\d+$/.test(stack[0]), stack[0]);
    }
  } finally {
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("e2e: -pid traces that process only and ends when it exits", async () => {
  const bin = buildFixture("spawner");
  const start = (rounds: number) =>
    new Deno.Command(bin, { args: ["-wait", "-rounds", String(rounds)], stdin: "piped", stdout: "piped" })
      .spawn();
  const a = start(3);
  const b = start(7);
  const readOut = async (p: Deno.ChildProcess) =>
    new TextDecoder().decode(await new Response(p.stdout).arrayBuffer());
  const gmon = new Gmon(["-path", bin, "-pid", String(a.pid), "-level", "info"]);
  try {
    assertEquals(attrs(await gmon.attached()).get("pid"), String(a.pid));
    const go = async (p: Deno.ChildProcess) => {
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      await w.close();
    };
    await Promise.all([go(a), go(b)]);
    const [outA, outB] = await Promise.all([readOut(a), readOut(b)]);
    await Promise.all([a.status, b.status]);
    const spawnedA = parseSpawned(outA);
    assertEquals([spawnedA.length, parseSpawned(outB).length], [12, 28]);
    assertEquals(await gmon.wait(), 0, "gmon ends by itself when its process exits");
    checkAllSeen(gmon.lines, spawnedA);
    const fixtureCreations = gmon.lines.filter((l) =>
      l.includes("msg=runtime.newproc1") && /main\.(spawn|recurse)/.test(l)
    );
    assertEquals(fixtureCreations.length, 12, "only process A's goroutines");
    assert(gmon.lines.every((l) => !/ pid=\d/.test(l) || l.includes("msg=")), "no pid= on events with -pid");
    assert(gmon.lines.some((l) => l.includes('msg="process exited"')), "says the process exited");
    assertEquals(attrs(gmon.lines.at(-1)!).get("msg"), "detached");
  } finally {
    for (const p of [a, b]) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("e2e: stacks deeper than the kernel's 127 frames are marked truncated", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Gmon(["-path", bin]);
  try {
    await gmon.attached();
    const spawned = await runSpawner(bin, ["-rounds", "1", "-depth", "200"]);
    const deep = spawned.find((s) => s.func === "main.recurse")!;
    const line = await gmon.waitFor(
      (l) => l.includes(`msg=runtime.newproc1 goroutine_id=${deep.goid} `),
      "deep",
    );
    assertEquals(attrs(line).get("stack_truncated"), "true");
    const others = spawned.filter((s) => s !== deep).map((s) =>
      gmon.lines.find((l) => l.includes(`msg=runtime.newproc1 goroutine_id=${s.goid} `))
    );
    assert(
      others.every((l) => l !== undefined && !l.includes("stack_truncated")),
      "shallow stacks are whole",
    );
    assertEquals(await gmon.stop(), 0);
  } finally {
    await gmon.stop("SIGKILL");
  }
});

Deno.test("e2e: -level WARN logs no events but still traces and summarises", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Gmon(["-path", bin, "-level", "WARN"]);
  try {
    // At WARN, the attached and detached lines still come (as WARN), and nothing between them.
    assertEquals(attrs(await gmon.attached()).get("level"), "WARN");
    const spawned = await runSpawner(bin, ["-rounds", "2"]);
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(await gmon.stop(), 0);
    assertEquals(gmon.lines.map((l) => attrs(l).get("msg")), ["attached", "detached"]);
    const detached = attrs(gmon.lines[1]);
    assertEquals(detached.get("level"), "WARN");
    assert(Number(detached.get("created")) >= spawned.length, gmon.lines[1]);
  } finally {
    await gmon.stop("SIGKILL");
  }
});

Deno.test("e2e: bad input gets one line naming the problem, status 1, nothing attached", async (t) => {
  const dir = Deno.makeTempDirSync();
  const text = `${dir}/notes.txt`;
  Deno.writeTextFileSync(text, "not a program\n");
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const bin = buildFixture("spawner");
  const cases: [string, string[], RegExp][] = [
    ["missing path", ["-path", `${dir}/nope`], /no such file/],
    ["directory", ["-path", dir], /is a directory/],
    ["not ELF", ["-path", text], /not an ELF file/],
    ["not Go", ["-path", "/bin/true"], /not a Go program/],
    ["no such pid", ["-path", bin, "-pid", "999999"], /process 999999 does not exist/],
    ["pid of another executable", ["-path", bin, "-pid", String(sleeper.pid)], /runs .*sleep.*, not /],
  ];
  try {
    for (const [name, args, want] of cases) {
      await t.step(name, async () => {
        const r = await runGmon(args);
        assertEquals(r.code, 1, r.stderr);
        assertEquals(r.stdout, "");
        const lines = r.stderr.trimEnd().split("\n");
        assertEquals(lines.length, 1, r.stderr);
        assert(lines[0].startsWith("gmon: ") && want.test(lines[0]), lines[0]);
        assertEquals(leftovers(), []);
      });
    }
  } finally {
    sleeper.kill();
    await sleeper.status;
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("e2e: without root, one line says how to run it; nothing attached", async () => {
  // Somewhere an unprivileged user can read the executable.
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  const bin = `${dir}/spawner`;
  Deno.copyFileSync(buildFixture("spawner"), bin);
  // The single file unpacks for this user where it may: a shared temp dir of this test's own.
  const tmp = Deno.makeTempDirSync();
  Deno.chmodSync(tmp, 0o1777);
  const r = await new Deno.Command("setpriv", {
    args: ["--reuid=65534", "--regid=65534", "--clear-groups", gmonBin, "-path", bin],
    stdin: "null",
    cwd: "/",
    env: { TMPDIR: tmp },
  }).output();
  Deno.removeSync(tmp, { recursive: true });
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 1, stderr);
  assertEquals(
    stderr,
    "gmon: loading BPF programs needs root (or CAP_BPF and CAP_PERFMON): run gmon with sudo\n",
  );
  assertEquals(leftovers(), []);
});

Deno.test("e2e: a usage error prints the problem and usage, status 2", async () => {
  const r = await runGmon(["-level", "INFO"]);
  assertEquals(r.code, 2);
  assert(r.stderr.startsWith("-path is required\nUsage of gmon:\n"), r.stderr);
});
