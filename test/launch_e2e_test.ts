/**
 * Launch mode, JSON lines, the single executable's build and the demo, end to end.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, gmonBin, leftovers, parseSpawned, root } from "./harness.ts";

const dec = new TextDecoder();

/**
 * gmon launching the spawner fixture with `-wait` (and `args` around it), stdio piped; returns once the
 * program has said its first line.
 */
async function launchWaiting(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(gmonBin, {
    args,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  return { child, reader, out: await firstLine(reader) };
}

/** Reads until the first newline (or the end): the program's "ready" line. */
async function firstLine(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let out = "";
  while (!out.includes("\n")) {
    const r = await reader.read();
    if (r.done) break;
    out += r.value;
  }
  return out;
}

Deno.test("launch: probes attached before any Go code runs; stdio passed through; the program's status", async () => {
  const bin = buildFixture("spawner");
  const r = await new Deno.Command(gmonBin, {
    args: ["--", bin, "-rounds", "2", "-exit", "3"],
    stdin: "null",
  }).output();
  assertEquals(r.code, 3, "the program's exit status");
  const spawned = parseSpawned(dec.decode(r.stdout));
  assertEquals(spawned.length, 8, "the program's stdout is its own");
  const lines = dec.decode(r.stderr).trimEnd().split("\n");
  const created = lines.map(attrs).filter((a) => a.get("msg") === "runtime.newproc1");
  // goroutine 1 (runtime.main) is created by the runtime's very first instructions.
  assert(created.some((a) => a.get("goroutine_id") === "1"), "goroutine 1's creation seen");
  for (const s of spawned) {
    const c = created.find((a) => a.get("goroutine_id") === String(s.goid));
    assert(c !== undefined && [...c.values()].includes(`${s.func} at ${s.site}`), `goroutine ${s.goid}`);
  }
  assertEquals(attrs(lines[0]).get("msg"), "attached");
  assertEquals(attrs(lines.at(-1)!).get("msg"), "detached");
  assertEquals(leftovers(), []);
});

Deno.test("launch: SIGTERM is forwarded; under sudo the program runs as the invoking user", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  const bin = `${dir}/spawner`;
  Deno.copyFileSync(buildFixture("spawner"), bin);
  const { child, reader, out } = await launchWaiting(["-o", `${dir}/gmon.log`, "--", bin, "-wait"], {
    SUDO_UID: "65534",
    SUDO_GID: "65534",
  });
  if (out.trim() !== "ready uid=65534") {
    child.kill("SIGKILL");
    throw new Error(
      `program said ${out}; gmon: ${dec.decode(await new Response(child.stderr).arrayBuffer())}`,
    );
  }
  child.kill("SIGTERM");
  const status = await child.status;
  await reader.cancel();
  await child.stdin.close().catch(() => {});
  const stderr = dec.decode(await new Response(child.stderr).arrayBuffer());
  assertEquals(status.code, 128 + 15, "killed by the forwarded SIGTERM: 143");
  assertEquals(stderr, "");
  const log = Deno.readTextFileSync(`${dir}/gmon.log`).trimEnd().split("\n");
  assertEquals(attrs(log.at(-1)!).get("msg"), "detached");
  Deno.removeSync(dir, { recursive: true });
  assertEquals(leftovers(), []);
});

Deno.test("json: -format json writes slog JSONHandler lines, the stack as a group", async () => {
  const bin = buildFixture("spawner");
  const r = await new Deno.Command(gmonBin, {
    args: ["-format", "json", "--", bin, "-rounds", "1"],
    stdin: "null",
  }).output();
  assertEquals(r.code, 0);
  const spawned = parseSpawned(dec.decode(r.stdout));
  const lines = dec.decode(r.stderr).trimEnd().split("\n").map((l) => JSON.parse(l));
  for (const l of lines) assertEquals(Object.keys(l).slice(0, 3), ["time", "level", "msg"]);
  for (const s of spawned) {
    const c = lines.find((l) => l.msg === "runtime.newproc1" && l.goroutine_id === s.goid);
    assert(c !== undefined, `creation of ${s.goid}`);
    assert(Object.values(c.stack).includes(`${s.func} at ${s.site}`), JSON.stringify(c.stack));
    const e = lines.find((l) => l.msg === "runtime.goexit1" && l.goroutine_id === s.goid);
    assert(e !== undefined && typeof e.lifetime === "number", "exit with lifetime in ns");
  }
  assertEquals(lines.at(-1).msg, "detached");
});

// What the checkout's tools do, the same whichever gmon the tests run: once, in the first pass.
const checkoutOnly = Deno.env.get("GMON_BIN") !== undefined;

Deno.test({
  name: "compile: a DENORT_BIN that isn't there is one line saying so, status 1, nothing written",
  ignore: checkoutOnly,
}, async () => {
  const out = `${Deno.makeTempDirSync()}/gmon`;
  const r = await new Deno.Command(`${root}/.tools/node_modules/.bin/deno`, {
    args: ["task", "--quiet", "compile", "--output", out],
    cwd: root,
    env: { DENORT_BIN: "/nonexistent/denort" },
  }).output();
  const stderr = dec.decode(r.stderr);
  assertEquals(r.code, 1);
  assertEquals(stderr, "compile: DENORT_BIN=/nonexistent/denort does not exist\n");
  assertEquals([...Deno.readDirSync(out.slice(0, -"/gmon".length))], []);
  Deno.removeSync(out.slice(0, -"/gmon".length));
});

Deno.test({
  name: "demo: the README's first command shows the leak and ends with the leak report",
  ignore: checkoutOnly,
}, async () => {
  const r = await new Deno.Command(`${root}/scripts/demo`, { stdin: "null" }).output();
  const out = dec.decode(r.stdout).trimEnd().split("\n");
  assertEquals(r.code, 0, dec.decode(r.stderr));
  const report = out.map(attrs).filter((a) => a.get("msg") === "leak report");
  // The leak: main.run's `go watch(...)`, one per job, never released.
  const leak = report[0];
  assertEquals([leak?.get("site"), leak?.get("live")], ["main.run", "20"], out.slice(-8).join("\n"));
  const detached = attrs(out.at(-1)!);
  assertEquals([detached.get("msg"), detached.get("exited")], ["detached", "20"]);
  assert(Number(detached.get("live")) >= 20, out.at(-1));
  assertEquals(leftovers(), []);
});

Deno.test("launch: a second Ctrl-C forces the exit, program and probes gone", async () => {
  const bin = buildFixture("spawner");
  const { child, reader, out } = await launchWaiting(["--", bin, "-wait", "-ignore-int"]);
  assert(out.startsWith("ready"), out);
  const prog = Number(
    /^(\d+)/.exec(Deno.readTextFileSync(`/proc/${child.pid}/task/${child.pid}/children`))?.[1],
  );
  child.kill("SIGINT"); // forwarded; the program ignores it
  await new Promise((r) => setTimeout(r, 300));
  child.kill("SIGINT");
  const status = await child.status;
  await reader.cancel();
  await child.stdin.close().catch(() => {});
  await child.stderr.cancel();
  assertEquals(status.code, 130);
  await new Promise((r) => setTimeout(r, 100));
  let alive = true;
  try {
    alive = !Deno.readTextFileSync(`/proc/${prog}/stat`).includes(") Z ");
  } catch {
    alive = false;
  }
  assertEquals(alive, false, "the launched program is gone");
  assertEquals(leftovers(), []);
});
