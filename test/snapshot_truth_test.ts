/**
 * The snapshot against the truth: test/fixtures/parked parks goroutines in every common way and writes
 * its own runtime.Stack(buf, true); `gmon -pid N -dump goroutine`, reading the running process from
 * outside, must print every one of those goroutines exactly as Go did — header, each frame's function,
 * arguments, file:line and offset, inlined frames, elision of deep stacks, created by — on every
 * release from 1.19, built plain, stripped (-s -w) and as PIE. The endpoint's
 * /debug/pprof/goroutine?debug=2 must print them so too.
 */
import { assert, assertEquals } from "./assert.ts";
import { Gmon, root, runGmon } from "./harness.ts";
import { get } from "./endpoint_util.ts";
import { freePort } from "./leaker.ts";
import { blocks, startParked } from "./parked.ts";
import { buildWith } from "./toolchains.ts";

const RELEASES = ["go1.19", "go1.20", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "machine", "go1.27"];
const KINDS: Record<string, string[]> = {
  "default": [],
  "-s -w": ["-ldflags=-s -w"],
  "pie": ["-buildmode=pie"],
};
/** The parked goroutines the fixture makes (all but main and the runtime's own). */
const PARKED = 24;
const results: string[] = [];

for (const release of RELEASES) {
  Deno.test(`snapshot truth: ${release}`, async (t) => {
    for (const [kind, flags] of Object.entries(KINDS)) {
      const built = buildWith(release, `${root}/test/fixtures/parked`, flags);
      if ("skip" in built) {
        results.push(`${release} ${kind}: skipped (${built.skip})`);
        continue;
      }
      await t.step(kind, async () => {
        const fixture = await startParked(built.path);
        try {
          const r = await runGmon(["-pid", String(fixture.child.pid), "-dump", "goroutine"]);
          assertEquals([r.code, r.stderr], [0, ""]);
          // Goroutine 1 called runtime.Stack and now reads stdin: it is the one that moved.
          assertEquals(differing(fixture.reference, r.stdout), []);
          // Nothing that Go hides (the runtime's own goroutines) and nothing made up.
          const want = blocks(fixture.reference);
          assertEquals([...blocks(r.stdout).keys()].filter((g) => g !== 1 && !want.has(g)), []);
          results.push(`${release} ${kind}: ${PARKED}/${PARKED} goroutines identical`);
        } finally {
          await fixture.stop();
        }
      });
    }
  });
}

/** The goroutines of `dump` that differ from `reference`'s parked ones (goroutine 1 has moved on). */
function differing(reference: string, dump: string): string[] {
  const want = blocks(reference);
  const got = blocks(dump);
  want.delete(1);
  assertEquals(want.size, PARKED);
  return [...want].filter(([goid, text]) => got.get(goid) !== text).map(([goid, text]) =>
    `goroutine ${goid}:\n--- Go\n${text}\n--- gmon\n${got.get(goid) ?? "(missing)"}`
  );
}

Deno.test("snapshot truth: the endpoint's goroutine?debug=2 is the same dump, arguments and all", async () => {
  const built = buildWith("machine", `${root}/test/fixtures/parked`, []);
  assert(!("skip" in built), "the machine's go builds the fixture");
  const fixture = await startParked(built.path);
  const port = freePort();
  const gmon = new Gmon(["-pid", String(fixture.child.pid), "-pprof-port", String(port)]);
  try {
    await gmon.attached();
    const dump = await (await get(`http://127.0.0.1:${port}/debug/pprof/goroutine?debug=2`)).text();
    assertEquals(differing(fixture.reference, dump), []);
  } finally {
    await gmon.stop();
    await fixture.stop();
  }
});

Deno.test("snapshot truth: summary", () => {
  console.log(
    `\nsnapshot truth matrix (gmon -dump goroutine vs the program's runtime.Stack):\n  ${
      results.join("\n  ")
    }`,
  );
  assert(results.some((r) => r.endsWith("identical")), "at least one build ran");
});
