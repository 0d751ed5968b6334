/**
 * gmon through what happens around a traced program (issue 10): deploys over its executable, execs,
 * a pid namespace, a reader that stops reading, a full disk. End to end with real eBPF.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, Gmon, gmonBin, leftovers } from "./harness.ts";
import { freePort, until } from "./leaker.ts";

const dec = new TextDecoder();

/** Runs `bin args` to its end; its status and stdout. */
async function run(bin: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const r = await new Deno.Command(bin, { args, stdin: "null", stderr: "inherit" }).output();
  return { code: r.code, stdout: dec.decode(r.stdout) };
}

/** Creation lines of process `pid` whose stack holds `func`. */
function created(lines: string[], pid: number, func: string): string[] {
  return lines.filter((l) =>
    l.includes(" msg=runtime.newproc1 ") && attrs(l).get("pid") === String(pid) && l.includes(func)
  );
}

Deno.test("hardening: deploys over the executable, in place (cp) or by rename (mv), are followed", async (t) => {
  const dir = Deno.makeTempDirSync();
  const app = `${dir}/app`;
  const spawner = buildFixture("spawner");
  const churner = buildFixture("churner");
  Deno.copyFileSync(spawner, app);
  const reference = await run(churner, ["-rounds", "20"]);
  const gmon = new Gmon(["-path", app]);
  try {
    await gmon.attached();
    await t.step("in place: the new build runs unharmed, traced at its own offsets", async () => {
      // cp writes the same inode: the old build's probe offsets would land inside the new one's code.
      const cp = await new Deno.Command("cp", { args: [churner, app] }).output();
      assertEquals(cp.code, 0);
      const child = new Deno.Command(app, { args: ["-rounds", "20"], stdout: "piped" }).spawn();
      const r = await child.output();
      assertEquals([r.code, dec.decode(r.stdout)], [0, reference.stdout]);
      await gmon.waitFor(
        (l) => l.includes(' msg="probes placed on the new build"'),
        "probes on the new build",
      );
      await until(
        "the new build's goroutines logged",
        () => Promise.resolve(created(gmon.lines, child.pid, "main.spawn at ").length === 2000),
      );
    });
    await t.step("by rename: a new file at the path is traced too", async () => {
      Deno.copyFileSync(spawner, `${app}.new`);
      Deno.renameSync(`${app}.new`, app);
      await gmon.waitFor((l) => l.includes(' msg="following the new build"'), "following the new build");
      const child = new Deno.Command(app, { args: ["-rounds", "1"], stdout: "piped" }).spawn();
      const r = await child.output();
      assertEquals(r.code, 0);
      await until(
        "the renamed build's goroutines logged",
        () => Promise.resolve(created(gmon.lines, child.pid, "main.spawnNamed at ").length === 1),
      );
    });
    assertEquals(await gmon.stop(), 0);
    assertEquals(gmon.stderr, "");
    assert(
      !gmon.lines.some((l) => l.includes("level=WARN") && !l.includes("probes off")),
      gmon.lines.join("\n"),
    );
  } finally {
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: a process that execs starts over: the new image's goroutines are its own", async () => {
  const bin = buildFixture("reexec");
  const gmon = new Gmon(["-path", bin]);
  try {
    await gmon.attached();
    const child = new Deno.Command(bin, { args: ["-park", "20", "-finish", "30"], stdout: "piped" }).spawn();
    const r = await child.output();
    assertEquals([r.code, dec.decode(r.stdout)], [0, "parked\ndone\n"]);
    // Stage 1 parks 20 at main.go:33; the new image starts 30 at main.go:48, which all end.
    const execd = await gmon.waitFor(
      (l) => l.includes(` msg="process exec'd" pid=${child.pid} `),
      "process exec'd",
    );
    assert(Number(attrs(execd).get("live")) >= 20, execd);
    assertEquals(created(gmon.lines, child.pid, "reexec/main.go:33").length, 20);
    const second = created(gmon.lines, child.pid, "reexec/main.go:48");
    assertEquals(second.length, 30);
    const stackId = attrs(second[0]).get("stack_id");
    await until("the new image's exits", () =>
      Promise.resolve(
        gmon.lines.filter((l) =>
          l.includes(" msg=runtime.goexit1 ") && attrs(l).get("created_stack_id") === stackId
        )
          .length === 30,
      ));
    assertEquals(await gmon.stop(), 0);
    const detached = attrs(gmon.lines.find((l) => l.includes(" msg=detached "))!);
    assertEquals(detached.get("lost"), "0");
    assert(
      !gmon.lines.some((l) => l.includes("leak report") && l.includes("main.go:33")),
      gmon.lines.join("\n"),
    );
  } finally {
    await gmon.stop("SIGKILL");
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: in a pid namespace, processes are numbered as gmon's /proc numbers them", async () => {
  const bin = buildFixture("leaker");
  const dir = Deno.makeTempDirSync();
  const fifo = `${dir}/in`;
  assertEquals((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
  const port = freePort();
  // In the new namespace the shell is 1 (then gmon, by exec) and the leaker 2.
  const script = `"$0" -leak 30 -churn 50 <${fifo} >/dev/null & exec "$1" -path "$0" -pprof-port ${port}`;
  const unshare = new Deno.Command("unshare", {
    args: ["-pf", "--mount-proc", "sh", "-c", script, bin, gmonBin],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    for await (const chunk of unshare.stdout.pipeThrough(new TextDecoderStream())) {
      lines.push(...chunk.split("\n"));
    }
  })();
  const stderr = new Response(unshare.stderr).text();
  const gmonPid = () =>
    Number(Deno.readTextFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`).trim());
  try {
    await until("attached", () => Promise.resolve(lines.some((l) => l.includes(" msg=attached "))));
    const w = await Deno.open(fifo, { write: true });
    await w.write(new TextEncoder().encode("leak\n"));
    await until(
      "80 creations by pid 2",
      () => Promise.resolve(created(lines, 2, "main.").length >= 80),
      20_000,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const live = [...metrics.matchAll(/^gmon_goroutines_live\{pid="2",[^}]*\} (\d+)$/gm)]
      .reduce((n, m) => n + Number(m[1]), 0);
    assert(live >= 30, metrics);
    assert(!lines.some((l) => l.includes("process exited")), lines.join("\n"));
    await w.write(new TextEncoder().encode("quit\n"));
    w.close();
    await until(
      "its end",
      () => Promise.resolve(lines.some((l) => l.includes(' msg="process exited" pid=2 '))),
    );
    Deno.kill(gmonPid(), "SIGINT");
    assertEquals((await unshare.status).code, 0);
    await reading;
    assertEquals(await stderr, "");
    assert(lines.some((l) => l.includes(" msg=detached ") && l.includes(" lost=0")), lines.join("\n"));
  } finally {
    try {
      Deno.kill(gmonPid(), "SIGKILL");
    } catch { /* gone */ }
    await unshare.status;
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: a reader that stops reading never makes gmon deaf; what it missed is counted", async () => {
  const bin = buildFixture("churner");
  // gmon's stdout is a pipe this test never reads: it fills within the first events.
  const gmon = new Deno.Command(gmonBin, { args: ["-path", bin], stdout: "piped", stderr: "piped" }).spawn();
  const stderr = new Response(gmon.stderr).text();
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const reference = 328350 * 500;
    const r = await run(bin, ["-rounds", "500"]);
    assertEquals([r.code, r.stdout], [0, `${reference}\n`]);
    const t0 = Date.now();
    gmon.kill("SIGTERM");
    const status = await gmon.status;
    const took = Date.now() - t0;
    assertEquals(status.code, 0);
    assert(took < 5000, `gmon took ${took} ms to end`);
    const text = await stderr;
    assert(/^gmon: \d+ lines not written: the output: its reader was too slow\n$/.test(text), text);
  } finally {
    try {
      gmon.kill("SIGKILL");
    } catch { /* gone */ }
    await gmon.status;
    await gmon.stdout.cancel();
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: a full disk loses lines, counted and said, never the program or the summary", async () => {
  const dir = Deno.makeTempDirSync();
  assertEquals(
    (await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir] }).output())
      .code,
    0,
  );
  try {
    const bin = buildFixture("churner");
    const out = `${dir}/gmon.log`;
    const r = await new Deno.Command(gmonBin, {
      args: ["-o", out, "--", bin, "-rounds", "200"],
      stdin: "null",
    }).output();
    const text = dec.decode(r.stderr);
    assertEquals([r.code, dec.decode(r.stdout)], [0, `${328350 * 200}\n`], text);
    const lines = text.trimEnd().split("\n");
    assert(lines[0].startsWith(`gmon: ${out}: No space left on device: lines are dropped`), text);
    assert(/^gmon: \d+ lines not written: \S*gmon\.log: No space left on device$/.test(lines.at(-1)!), text);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
  }
  assertEquals(leftovers(), []);
});
