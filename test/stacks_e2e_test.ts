/**
 * gmon end to end with a program of 131,072 distinct creation stacks (test/fixtures/stacks): memory
 * stays bounded (stacks with no live goroutine are evicted), no event is lost, and every line still
 * names its own stack: each distinct call path once, a stack id never for two paths, each exit naming
 * its goroutine's creation stack.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, Gmon, leftovers } from "./harness.ts";

const STACKS = 1 << 17;
/** gmon's peak RSS allowed: ~140 MB at rest, 32 MB of ring; before eviction this run took ~1 GB. */
const RSS_LIMIT_KB = 500 << 10;

Deno.test("e2e: 131,072 distinct stacks: bounded memory, nothing lost, every line names its own stack", async () => {
  const bin = buildFixture("stacks");
  const dir = Deno.makeTempDirSync({ prefix: "gmon-stacks-" });
  const log = `${dir}/gmon.log`;
  const gmon = new Gmon(["-path", bin, "-o", log]);
  try {
    await waitForFile(log, (text) => text.includes(" msg=attached "));
    // Paced (a millisecond's sleep every 50 creations, ~25,000 new stacks a second) so that the
    // drain's speed is what is tested, not whether two CPUs suffice for the program and gmon at once.
    const run = await new Deno.Command(bin, { args: ["-n", String(STACKS), "-pace", "50"] }).output();
    assertEquals(new TextDecoder().decode(run.stdout).trim(), `done ${STACKS}`);
    await new Promise((r) => setTimeout(r, 2000));
    const status = Deno.readTextFileSync(`/proc/${gmon.child.pid}/status`);
    const peakKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]);
    assertEquals(await gmon.stop(), 0);
    assertEquals(gmon.stderr, "");

    const seen = await check(log);
    assertEquals(seen.paths, STACKS);
    const detached = attrs(seen.last);
    assertEquals(detached.get("msg"), "detached");
    assertEquals(detached.get("lost"), "0");
    assert(Number(detached.get("exited")) >= STACKS, seen.last);
    assert(peakKb < RSS_LIMIT_KB, `gmon's peak RSS ${(peakKb / 1024).toFixed(0)} MB`);
  } finally {
    await gmon.stop("SIGKILL");
    Deno.removeSync(dir, { recursive: true });
  }
  assertEquals(leftovers(), []);
});

/**
 * Reads gmon's lines: each creation's call path (its main.a/main.b frames: each made once) and stack
 * id (never another path's), each exit's created_stack_id checked against its goroutine's creation.
 * Returns the distinct paths seen and the last line.
 */
async function check(path: string): Promise<{ paths: number; last: string }> {
  const pathOfId = new Map<string, string>();
  const paths = new Set<string>();
  const stackOfGoid = new Map<string, string>();
  let last = "";
  for await (const line of lines(path)) {
    last = line;
    if (!line.includes('"main.next at ')) {
      if (line.includes(" msg=runtime.goexit1 ")) checkExit(line, stackOfGoid);
      continue;
    }
    const goid = /goroutine_id=(\d+)/.exec(line)![1];
    const id = / stack_id=(\d+)/.exec(line)![1];
    const calls = [...line.matchAll(/"main\.([ab]) at /g)].map((m) => m[1]).join("");
    assertEquals(calls.length, 17, line.slice(0, 300));
    assertEquals(pathOfId.get(id) ?? calls, calls, `stack_id=${id} names two call paths`);
    assert(!paths.has(calls), `call path ${calls} created twice`);
    pathOfId.set(id, calls);
    paths.add(calls);
    stackOfGoid.set(goid, id);
  }
  return { paths: paths.size, last };
}

/** An exit of a fixture goroutine names the stack its creation line had. */
function checkExit(line: string, stackOfGoid: Map<string, string>): void {
  const goid = /goroutine_id=(\d+)/.exec(line)![1];
  const created = stackOfGoid.get(goid);
  if (created === undefined) return;
  assertEquals(/ created_stack_id=(\d+)/.exec(line)?.[1], created, line);
  stackOfGoid.delete(goid);
}

async function* lines(path: string): AsyncGenerator<string> {
  const file = await Deno.open(path);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest !== "") yield rest;
}

async function waitForFile(path: string, done: (text: string) => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if (done(Deno.readTextFileSync(path))) return;
    } catch { /* not made yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path}: not ready in 20s`);
}
