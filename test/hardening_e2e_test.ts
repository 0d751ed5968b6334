/**
 * gmon under hostile or unlucky use (issue 10), end to end with real eBPF: each test is one way it
 * used to break.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, Gmon, leftovers, root, runGmon, runSpawner } from "./harness.ts";
import { freePort, until } from "./leaker.ts";

const dec = new TextDecoder();

/** One-line error, status 1, nothing on stdout. */
function oneLine(r: { code: number; stdout: string; stderr: string }, want: RegExp): void {
  assertEquals([r.code, r.stdout], [1, ""], r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(want.test(lines[0]), lines[0]);
}

/** The state letter of /proc/PID/stat, or null when gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

Deno.test("hardening: -o is opened only once everything is checked, and never over the executable", async () => {
  const dir = Deno.makeTempDirSync();
  const prev = `${dir}/prev.log`;
  Deno.writeTextFileSync(prev, "keep me\n");
  oneLine(await runGmon(["-o", prev, "-path", "/nonexistent"]), /^gmon: \/nonexistent: no such file$/);
  assertEquals(Deno.readTextFileSync(prev), "keep me\n");
  const app = `${dir}/app`;
  Deno.copyFileSync(buildFixture("spawner"), app);
  const size = Deno.statSync(app).size;
  oneLine(
    await runGmon(["-o", app, "-path", app]),
    /^gmon: -o .*\/app is the executable .*\/app: refusing to overwrite it$/,
  );
  assertEquals(Deno.statSync(app).size, size);
  assertEquals(leftovers(), []);
});

Deno.test("hardening: paths Deno reserves are read through libc", async (t) => {
  const bin = buildFixture("spawner");
  const child = new Deno.Command(bin, { args: ["-wait", "-rounds", "1"], stdin: "piped", stdout: "piped" })
    .spawn();
  try {
    await t.step("-path /proc/PID/exe and /proc/PID/root/...", async () => {
      for (const path of [`/proc/${child.pid}/exe`, `/proc/${child.pid}/root${bin}`]) {
        const gmon = new Gmon(["-path", path]);
        try {
          assertEquals(attrs(await gmon.attached()).get("path"), path);
          assertEquals(await gmon.stop(), 0);
          assertEquals(gmon.stderr, "");
        } finally {
          await gmon.stop("SIGKILL");
        }
      }
    });
    await t.step("-o /dev/stderr and -o /proc/self/fd/2", async () => {
      for (const out of ["/dev/stderr", "/proc/self/fd/2"]) {
        const r = await runGmon(["-pid", String(child.pid), "-dump", "goroutine", "-o", out]);
        assertEquals([r.code, r.stdout], [0, ""], r.stderr);
        assert(r.stderr.startsWith("goroutine "), r.stderr);
      }
    });
  } finally {
    await child.stdin.close();
    await child.stdout.cancel();
    await child.status;
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: -pid of a process that becomes a zombie ends gmon without waiting for its reaping", async () => {
  const bin = buildFixture("spawner");
  // The shell starts the fixture and execs a sleep that never reaps it.
  const parent = new Deno.Command("sh", {
    args: ["-c", `(sleep 3; echo go) | "$0" -wait -rounds 1 > /dev/null & echo $!; exec sleep 60`, bin],
    stdout: "piped",
  }).spawn();
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pid = Number((await reader.read()).value!.trim());
  reader.releaseLock();
  try {
    const gmon = new Gmon(["-pid", String(pid)]);
    await gmon.attached();
    // Told "go" a few seconds in, the fixture runs its round and exits, unreaped.
    for (let i = 0; i < 250 && stateOf(pid) !== "Z"; i++) await new Promise((r) => setTimeout(r, 20));
    assertEquals(stateOf(pid), "Z");
    const t0 = Date.now();
    assertEquals(await gmon.wait(), 0);
    assert(Date.now() - t0 < 5000, `gmon took ${Date.now() - t0} ms`);
    assertEquals(stateOf(pid), "Z", "still unreaped: gmon did not wait for it");
    oneLine(await runGmon(["-pid", String(pid)]), new RegExp(`^gmon: process ${pid} has exited \\(a zombie`));
  } finally {
    parent.kill();
    await parent.status;
    await parent.stdout.cancel().catch(() => {});
  }
  assertEquals(leftovers(), []);
});

Deno.test("hardening: SIGTERM during launch-mode start-up ends the program, never leaves it stopped", async () => {
  const bin = buildFixture("spawner");
  const gmon = new Deno.Command(`${root}/scripts/gmon`, {
    args: ["--", bin, "-wait", "-rounds", "1"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // As soon as the program exists (stopped, before the probes), gmon is told to stop.
  let program = 0;
  for (let i = 0; i < 1000 && program === 0; i++) {
    program = launchedBy(gmon.pid);
    if (program === 0) await new Promise((r) => setTimeout(r, 5));
  }
  assert(program > 0, "the program was started");
  gmon.kill("SIGTERM");
  const [status, stderr] = await Promise.all([gmon.status, new Response(gmon.stderr).text()]);
  await gmon.stdin.close().catch(() => {});
  await gmon.stdout.cancel();
  assertEquals(status.code, 143, stderr);
  assertEquals(stateOf(program), null, "the program is gone, not stopped");
  assert(stderr.trimEnd().split("\n").some((l) => attrs(l).get("msg") === "detached"), stderr);
  assertEquals(leftovers(), []);
});

Deno.test("hardening: errors are one clean line", async (t) => {
  await t.step("a path with a newline", async () => {
    oneLine(await runGmon(["-path", "/tmp/no\nsuch"]), /^gmon: \/tmp\/no\\nsuch: no such file$/);
  });
  await t.step("a big ELF that is not Go is refused from its section headers", async () => {
    const big = Deno.makeTempFileSync();
    // A real non-Go executable's headers, followed by 1.2 GB of nothing (sparse: no disk used).
    const bytes = Deno.readFileSync("/bin/true");
    const f = Deno.openSync(big, { write: true });
    f.writeSync(bytes);
    f.truncateSync(1_200_000_000);
    f.close();
    const t0 = Date.now();
    oneLine(
      await runGmon(["-path", big]),
      /: not a Go program \(no \.go\.buildinfo or \.gopclntab section\)$/,
    );
    assert(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    Deno.removeSync(big);
  });
  await t.step("a file too large to read is named so", async () => {
    const huge = Deno.makeTempFileSync();
    const f = Deno.openSync(huge, { write: true });
    f.truncateSync(5 * 2 ** 30);
    f.close();
    oneLine(await runGmon(["-path", huge]), /is 5\.0 GiB: larger than gmon reads \(1\.5 GiB\)$/);
    Deno.removeSync(huge);
  });
});

Deno.test("hardening: gmon | head -1 ends when head does, even with the target idle", async () => {
  const bin = buildFixture("spawner");
  await runSpawner(bin, ["-rounds", "1"]);
  const child = new Deno.Command(bin, { args: ["-wait", "-rounds", "1"], stdin: "piped", stdout: "null" })
    .spawn();
  try {
    const shell = new Deno.Command("bash", {
      args: ["-c", `"${root}/scripts/gmon" -pid "$0" | head -n 1`, String(child.pid)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const r = await Promise.race([shell, new Promise<null>((res) => setTimeout(() => res(null), 10_000))]);
    assert(r !== null, "gmon ended without another event");
    assertEquals(attrs(dec.decode(r.stdout).trim()).get("msg"), "attached");
  } finally {
    await child.stdin.close();
    await child.status;
  }
  assertEquals(leftovers(), []);
});

/** The program gmon (process `pid`) launched: its child running gmon's launch shell, or 0. */
function launchedBy(pid: number): number {
  for (const e of Deno.readDirSync("/proc")) {
    const p = Number(e.name);
    if (!Number.isInteger(p)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === pid && Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("gmon-launch")) return p;
    } catch { /* gone */ }
  }
  return 0;
}

Deno.test("hardening: idle connections by the thousand never end gmon; the endpoint answers again", async () => {
  const bin = buildFixture("leaker");
  const port = freePort();
  // Few file descriptors for gmon, as a hostile peer would wish.
  const gmon = new Gmon(["-path", bin, "-pprof-port", String(port)], ["ulimit -n 128"]);
  await gmon.attached();
  const holder = new Deno.Command("python3", {
    args: ["-c", HOLD_IDLE, String(port), "1100"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  try {
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let first = "";
    while (!first.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      first += r.value;
    }
    const held = Number(/held (\d+)/.exec(first)?.[1]);
    reader.releaseLock();
    assert(held >= 1000, `held ${held} connections: ${JSON.stringify(first)}`);
    // Idle connections are closed after a while; the endpoint serves again, gmon never died.
    await until("/metrics answering", async () => {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
      await r?.body?.cancel();
      return r?.status === 200;
    }, 30_000);
    assertEquals(gmon.child.pid > 0 && stateOf(gmon.child.pid) !== null, true);
    await holder.stdin.close();
    await holder.status;
    assertEquals(await gmon.stop(), 0);
    assertEquals(attrs(gmon.lines.at(-1)!).get("msg"), "detached");
    assertEquals(gmon.stderr, "");
  } finally {
    await holder.stdin.close().catch(() => {});
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
    await gmon.stop("SIGKILL");
  }
});

/** Python: open N idle connections to 127.0.0.1:PORT, say how many, hold them until stdin closes. */
const HOLD_IDLE = `
import socket, sys, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 8192, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        pass
print("held", len(held), flush=True)
sys.stdin.read()
`;

Deno.test("hardening: heavy endpoint requests never stop the events from being drained", async () => {
  const bin = buildFixture("churner");
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const gmon = new Gmon(["-path", bin, "-pprof-port", String(port), "-level", "WARN"]);
  await gmon.attached();
  const rounds = 4000;
  const child = new Deno.Command(bin, {
    args: ["-park", "20000", "-rounds", String(rounds)],
    stdout: "piped",
  })
    .spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    assertEquals((await out.read()).value?.trim(), "parked");
    // While it churns, 20 heavy requests at a time: every goroutine as JSON and as Go's dump.
    const heavy = ["/goroutines", "/debug/pprof/goroutine?debug=2", "/debug/pprof/goroutinecreated?debug=2"];
    let done = false;
    const status = child.status.then((s) => (done = true, s));
    let answered = 0;
    while (!done) {
      await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const r = await fetch(base + heavy[i % heavy.length]);
        await r.arrayBuffer();
        if (r.status === 200) answered++;
      }));
    }
    assertEquals((await status).code, 0);
    assert(answered >= 20, `${answered} answered`);
    assertEquals(await gmon.stop(), 0);
    const detached = attrs(gmon.lines.at(-1)!);
    assertEquals(detached.get("msg"), "detached");
    assertEquals(detached.get("lost"), "0", "no event lost");
    assert(Number(detached.get("created")) >= rounds * 100, gmon.lines.at(-1));
  } finally {
    await out.cancel().catch(() => {});
    await gmon.stop("SIGKILL");
  }
});
