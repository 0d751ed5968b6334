/**
 * Everyday use, end to end: gmon outliving the processes it watches, a reader that goes away, and
 * every kind of bad input answered in one line with nothing left attached.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, Gmon, gmonBin, leftovers, runGmon, runSpawner } from "./harness.ts";

Deno.test("everyday: without -pid, each new run of the executable is picked up and its end noted", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Gmon(["-path", bin]);
  try {
    await gmon.attached();
    const first = await runSpawner(bin, ["-rounds", "2"]);
    const second = await runSpawner(bin, ["-rounds", "3"]);
    await gmon.waitFor((l) => l.includes(' msg="process exited" '), "a process exited line");
    assertEquals(await gmon.stop(), 0);
    const pids = new Map<string, number>();
    for (const l of gmon.lines) {
      const a = attrs(l);
      if (a.get("msg") === "runtime.newproc1" && /main\.(spawn|recurse)/.test(l)) {
        pids.set(a.get("pid")!, (pids.get(a.get("pid")!) ?? 0) + 1);
      }
    }
    assertEquals([...pids.values()].sort(), [first.length, second.length].sort());
  } finally {
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("everyday: a reader that goes away (gmon | head) ends gmon quietly, nothing attached", async () => {
  const bin = buildFixture("spawner");
  const shell = new Deno.Command("bash", {
    args: ["-c", `"$1" -path "$0" | head -n 2`, bin, gmonBin],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // head buffers what it prints: watch the kernel for the probes instead, then make events until
  // head has its two lines and gmon, writing on, finds the pipe closed.
  for (let i = 0; i < 500 && leftovers().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert(leftovers().length > 0, "gmon attached");
  for (let i = 0; i < 20 && leftovers().length > 0; i++) await runSpawner(bin, ["-rounds", "1"]);
  const out = new TextDecoder().decode(await new Response(shell.stdout).arrayBuffer());
  const status = await shell.status;
  assertEquals(out.split("\n").length, 3, out);
  const stderr = new TextDecoder().decode(await new Response(shell.stderr).arrayBuffer());
  assertEquals(status.code, 0);
  assertEquals(stderr, "");
  assertEquals(leftovers(), []);
});

Deno.test("everyday: bad input of every kind, one line each, right status, nothing attached", async (t) => {
  const arm = buildFixture("spawner", [], { GOARCH: "arm64" });
  const cases: [string, string[], number, RegExp][] = [
    ["no -path", [], 2, /^-path is required\nUsage of gmon:\n/],
    [
      "unknown flag",
      ["-path", "/bin/true", "-frobnicate"],
      2,
      /^flag provided but not defined: -frobnicate\nUsage/,
    ],
    ["bad -level", ["-path", "/bin/true", "-level", "LOUD"], 2, /^invalid -level "LOUD"/],
    ["port out of range", ["-path", "/bin/true", "-pprof-port", "70000"], 2, /pprof-port/],
    ["another architecture", ["-path", arm], 1, /^gmon: .*ELF for aarch64, not x86-64\n$/],
  ];
  for (const [name, args, code, want] of cases) {
    await t.step(name, async () => {
      const r = await runGmon(args);
      assertEquals(r.code, code, r.stderr);
      assert(want.test(r.stderr), r.stderr);
      if (code === 1) assertEquals(r.stderr.split("\n").length, 2, "one line");
      assert(!r.stderr.includes("    at "), "no stack trace");
      assertEquals(leftovers(), []);
    });
  }
});
