/**
 * The snapshot against the truth: test/fixtures/parked parks goroutines in every common way and writes
 * its own runtime.Stack(buf, true); `gmon -pid N -dump goroutine`, reading the running process from
 * outside, must print every one of those goroutines exactly as Go did — header, each frame's function,
 * arguments, file:line and offset, inlined frames, elision of deep stacks, created by — on every
 * release from 1.19, built plain, stripped (-s -w) and as PIE.
 */
import { assert, assertEquals } from "./assert.ts";
import { root, runGmon } from "./harness.ts";
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
          const want = blocks(fixture.reference);
          const got = blocks(r.stdout);
          // Goroutine 1 called runtime.Stack and now reads stdin: it is the one that moved.
          want.delete(1);
          assertEquals(want.size, PARKED);
          const differ = [...want].filter(([goid, text]) => got.get(goid) !== text).map(([goid, text]) =>
            `goroutine ${goid}:\n--- Go\n${text}\n--- gmon\n${got.get(goid) ?? "(missing)"}`
          );
          assertEquals(differ, []);
          // Nothing that Go hides (the runtime's own goroutines) and nothing made up.
          assertEquals([...got.keys()].filter((g) => g !== 1 && !want.has(g)), []);
          results.push(`${release} ${kind}: ${want.size}/${want.size} goroutines identical`);
        } finally {
          await fixture.stop();
        }
      });
    }
  });
}

Deno.test("snapshot truth: summary", () => {
  console.log(
    `\nsnapshot truth matrix (gmon -dump goroutine vs the program's runtime.Stack):\n  ${
      results.join("\n  ")
    }`,
  );
  assert(results.some((r) => r.endsWith("identical")), "at least one build ran");
});
