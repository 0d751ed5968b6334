/**
 * Reading goroutines from outside, end to end: a process creating and ending goroutines at full speed is
 * read again and again without a torn stack and without harm (its work and output unchanged), and every
 * bad input gets one line naming the problem and status 1.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildFixture, root, runGmon } from "./harness.ts";
import { withGoVersion } from "./goversion.ts";
import { buildWith } from "./toolchains.ts";
import { blocks, startParked } from "./parked.ts";
import { TargetImage } from "../src/target/wasm.ts";
import { parseGoVersion } from "../src/target/goruntime.ts";
import { SnapshotReader } from "../src/snapshot/read.ts";

/** One-line error, status 1, nothing on stdout. */
function oneLine(r: { code: number; stdout: string; stderr: string }, want: RegExp): void {
  assertEquals([r.code, r.stdout], [1, ""], r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(want.test(lines[0]), lines[0]);
}

Deno.test("snapshot e2e: a process churning goroutines is read 20 times, never torn, never harmed", async () => {
  const bin = buildFixture("churner");
  const rounds = 100_000;
  // 50 goroutines stay parked throughout (in main.main.func1): every reading must show them whole.
  // One the GC is scanning at that instant says so after its wait reason, as Go's tracebacks do.
  const child = new Deno.Command(bin, { args: ["-park", "50", "-rounds", String(rounds)], stdout: "piped" })
    .spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) out += (await lines.read()).value ?? "";
  assertEquals(out, "parked\n");
  const rest = (async () => {
    for (let r = await lines.read(); !r.done; r = await lines.read()) out += r.value;
  })();
  let readings = 0;
  let workers = 0;
  try {
    for (let i = 0; i < 20; i++) {
      const r = await runGmon(["-pid", String(child.pid), "-dump", "goroutine"]);
      if (r.code !== 0) {
        // The program may end between two readings; then it says so in one line.
        assert(
          /^gmon: process \d+ (does not exist|exited while being read|has exited)/.test(r.stderr),
          r.stderr,
        );
        break;
      }
      readings++;
      let parked = 0;
      // What a parked goroutine looked like when it was not whole: said if the count is short.
      const odd: string[] = [];
      for (const [goid, text] of blocks(r.stdout)) {
        const lines = text.split("\n");
        if (lines[1]?.startsWith("\tgoroutine running on other thread")) continue;
        if (
          /^goroutine \d+ \[chan receive(?: \(scan\))?\]:\nmain\.main\.func1\(\)\n\t.*\/churner\/main\.go:\d+ \+0x[0-9a-f]+\ncreated by main\.main in goroutine 1\n/
            .test(text)
        ) {
          parked++;
        } else if (text.includes("main.main.func1") || !text.includes("\n\t")) odd.push(text);
        // Every stack read whole: the churner's workers end in main.worker, called by its go statement.
        if (text.includes("main.worker(")) {
          workers++;
          assert(
            /\ncreated by main\.spawn in goroutine \d+\n\t.*\/churner\/main\.go:\d+ \+0x[0-9a-f]+$/.test(
              text,
            ),
            text,
          );
          assert(
            lines.every((l, j) =>
              j === 0 || l.startsWith("\t") || /^[\w.\/()*\[\]-]+\(.*\)$|^created by /.test(l)
            ),
            text,
          );
        }
        assert(goid > 0, text);
      }
      assertEquals(
        parked,
        50,
        `the parked goroutines, whole, in every reading; not: ${odd.join("\n") || "none"}`,
      );
    }
  } finally {
    assertEquals((await child.status).code, 0);
    await rest;
  }
  // The sum of i*i for i < 100, once per round: what the program prints undisturbed.
  assertEquals(out, `parked\n${rounds * 328350}\n`, "the program's output is unchanged");
  assert(readings >= 3, `read ${readings} times (${workers} workers seen mid-flight)`);
});

Deno.test("snapshot e2e: goroutines remembered between readings are read again once they have run", async () => {
  const bin = buildFixture("mover");
  const image = TargetImage.openFile(bin);
  const release = parseGoVersion(image.info().goVersion!)!;
  const child = new Deno.Command(bin, { args: ["-n", "100"], stdin: "piped", stdout: "piped" }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const input = child.stdin.getWriter();
  const said = async (want: string) => assertEquals((await lines.read()).value, `${want}\n`);
  // Where each of the 100 goroutines parked in main.leaf is, by a reader that remembers and by a new one.
  const reader = new SnapshotReader(image, release);
  const where = async (r: SnapshotReader) => {
    const s = await r.read(child.pid, 0);
    const at = s.goroutines.filter((g) => g.frames?.some((f) => f.func === "main.leaf"))
      .map((g) => `${g.goid} ${g.state} ${g.frames!.map((f) => `${f.func}:${f.line}`).join(" < ")}`);
    return { at, bytes: s.bytes };
  };
  const readBoth = async (via: string) => {
    const kept = await where(reader);
    assertEquals(kept.at, (await where(new SnapshotReader(image, release))).at, "as a new reader reads them");
    assertEquals(kept.at.length, 100, kept.at.join("\n"));
    assert(kept.at.every((w) => w.includes(`main.leaf:`) && w.includes(` < main.${via}:`)), kept.at[0]);
    return kept;
  };
  try {
    await said("parked");
    const first = await readBoth("viaA");
    // Nothing ran, and a GC has seen them parked: their stacks are not read again.
    const again = await readBoth("viaA");
    assert(again.bytes < first.bytes - 100 * 64, `${again.bytes} bytes read again, ${first.bytes} at first`);
    // Woken and parked again at the same pc and sp, through another caller: no GC since, then one.
    for (const line of ["run", "gc"]) {
      await input.write(new TextEncoder().encode(`${line}\n`));
      await said("moved");
      await readBoth("viaB");
    }
  } finally {
    await input.close();
    assertEquals((await child.status).code, 0);
    await lines.cancel();
  }
});

Deno.test("snapshot e2e: bad input is one line, status 1", async (t) => {
  const parked = buildWith("machine", `${root}/test/fixtures/parked`, []);
  assert(!("skip" in parked), "the machine's go builds the fixture");
  const fixture = await startParked(parked.path);
  try {
    await t.step("not a Go program", async () => {
      const sleep = new Deno.Command("sleep", { args: ["30"] }).spawn();
      try {
        oneLine(
          await runGmon(["-pid", String(sleep.pid), "-dump", "goroutine"]),
          /^gmon: process \d+ runs \/\S*sleep: not a Go program/,
        );
      } finally {
        sleep.kill();
        await sleep.status;
      }
    });
    await t.step("not the -path executable", async () => {
      oneLine(
        await runGmon(["-pid", String(fixture.child.pid), "-path", "/bin/true", "-dump", "goroutine"]),
        /^gmon: \/bin\/true: not a Go program|^gmon: process \d+ runs .*, not \/bin\/true$/,
      );
      const other = buildFixture("leaker");
      oneLine(
        await runGmon(["-pid", String(fixture.child.pid), "-path", other, "-dump", "goroutine"]),
        new RegExp(`^gmon: process ${fixture.child.pid} runs .*, not ${other}$`),
      );
    });
    await t.step("no such process", async () => {
      oneLine(
        await runGmon(["-pid", "2147483000", "-dump", "goroutine"]),
        /^gmon: process 2147483000 does not exist$/,
      );
    });
    await t.step("a kernel thread", async () => {
      oneLine(
        await runGmon(["-pid", "2", "-dump", "goroutine"]),
        /^gmon: process 2 is a kernel thread, not a Go program$/,
      );
    });
    await t.step("a zombie", async () => {
      // sleep 0 exits at once; the shell's exec'd sleep never reaps it.
      const parent = new Deno.Command("sh", { args: ["-c", "sleep 0 & exec sleep 30"] }).spawn();
      try {
        let zombie = 0;
        for (let i = 0; i < 100 && zombie === 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          zombie = zombieChildOf(parent.pid);
        }
        assert(zombie > 0, "a zombie child");
        oneLine(
          await runGmon(["-pid", String(zombie), "-dump", "goroutine"]),
          new RegExp(`^gmon: process ${zombie} has exited \\(a zombie its parent has not reaped\\)$`),
        );
      } finally {
        parent.kill();
        await parent.status;
      }
    });
    await t.step("a release gmon has no layout for, without DWARF", async () => {
      const stripped = buildWith("machine", `${root}/test/fixtures/parked`, ["-ldflags=-s -w"]);
      assert(!("skip" in stripped));
      const renamed = await withGoVersion(stripped.path, "go1.99.1");
      const other = await startParked(renamed);
      try {
        oneLine(
          await runGmon(["-pid", String(other.child.pid), "-dump", "goroutine"]),
          /^gmon: built by go1\.99\.1, a release whose goroutine layout gmon does not know \(and without DWARF to read it from\)$/,
        );
      } finally {
        await other.stop();
        Deno.removeSync(renamed);
      }
    });
    await t.step("gone while being read", async () => {
      const image = TargetImage.openFile(parked.path);
      const reader = new SnapshotReader(image, parseGoVersion(image.info().goVersion!)!);
      const victim = await startParked(parked.path);
      victim.child.kill("SIGKILL");
      await victim.child.status;
      let message = "";
      await reader.read(victim.child.pid, 0).catch((e) => message = (e as Error).message);
      assertEquals(message, `process ${victim.child.pid} exited while being read`);
    });
    await t.step("the dump still reads the live one", async () => {
      const r = await runGmon(["-pid", String(fixture.child.pid), "-dump", "goroutine"]);
      assertEquals(r.code, 0, r.stderr);
      assert(blocks(r.stdout).size >= 24);
    });
  } finally {
    await fixture.stop();
  }
});

/** A child of `pid` in state Z, or 0. */
function zombieChildOf(pid: number): number {
  for (const e of Deno.readDirSync("/proc")) {
    const child = Number(e.name);
    if (!Number.isInteger(child)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${child}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" && Number(fields[1]) === pid) return child;
    } catch { /* gone */ }
  }
  return 0;
}
