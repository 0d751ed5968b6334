/**
 * The core tracer's end-to-end checks on Go programs as they ship: every release from 1.19 on, each
 * built plain, stripped (-s -w: no DWARF, no symbol table), as PIE, and with cgo on.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, Gmon, leftovers, root, runSpawner } from "./harness.ts";
import { buildWith } from "./toolchains.ts";

const RELEASES = ["machine", "go1.19", "go1.20", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "go1.27"];
const KINDS: Record<string, { flags: string[]; env: Record<string, string> }> = {
  "default": { flags: [], env: { CGO_ENABLED: "0" } },
  "-s -w": { flags: ["-ldflags=-s -w"], env: { CGO_ENABLED: "0" } },
  "pie": { flags: ["-buildmode=pie"], env: { CGO_ENABLED: "0" } },
  "cgo": { flags: [], env: { CGO_ENABLED: "1" } },
};
const results: string[] = [];

for (const release of RELEASES) {
  Deno.test(`matrix e2e: ${release}`, async (t) => {
    for (const [kind, { flags, env }] of Object.entries(KINDS)) {
      const built = buildWith(release, `${root}/test/fixtures/spawner`, flags, env);
      if ("skip" in built) {
        console.log(`skipped ${release} ${kind}: ${built.skip}`);
        results.push(`${release} ${kind}: skipped (${built.skip})`);
        continue;
      }
      await t.step(kind, async () => {
        const bin = built.path;
        const gmon = new Gmon(["-path", bin]);
        try {
          const version = attrs(await gmon.attached()).get("go_version")!;
          const spawned = await runSpawner(bin, ["-rounds", "3"]);
          assertEquals(spawned.length, 12);
          const last = spawned.at(-1)!.goid;
          await gmon.waitFor(
            (l) => l.includes(`msg=runtime.goexit1 goroutine_id=${last} `),
            `exit of ${last}`,
          );
          assertEquals(await gmon.stop(), 0);
          const created = new Map<number, string[]>();
          const exited = new Set<number>();
          for (const line of gmon.lines) {
            const a = attrs(line);
            const goid = Number(a.get("goroutine_id"));
            if (a.get("msg") === "runtime.newproc1") {
              const stack: string[] = [];
              for (let i = 0; a.has(`stack.${i}`); i++) stack.push(a.get(`stack.${i}`)!);
              created.set(goid, stack);
            }
            if (a.get("msg") === "runtime.goexit1") exited.add(goid);
          }
          const misses = spawned.flatMap((s) => {
            const stack = created.get(s.goid);
            const want = `${s.func} at ${s.site}`;
            if (!stack) return [`no creation of ${s.goid}`];
            const out = [];
            if (!stack.includes(want)) out.push(`${s.goid}: no "${want}" in ${stack.join(" | ")}`);
            // Go 1.19's systemstack leaves runtime.newproc's frame out of the frame-pointer chain.
            if (!stack[0].startsWith("runtime.newproc at ") && stack[0] !== want) {
              out.push(`${s.goid}: starts at ${stack[0]}`);
            }
            if (!exited.has(s.goid)) out.push(`no exit of ${s.goid}`);
            if (
              s.func === "main.recurse" && stack.filter((f) => f.startsWith("main.recurse at ")).length !== 41
            ) {
              out.push(`${s.goid}: not 41 main.recurse frames`);
            }
            return out;
          });
          assertEquals(misses, []);
          assertEquals(attrs(gmon.lines.at(-1)!).get("lost"), "0");
          results.push(`${release} ${kind}: ${version} ok`);
        } finally {
          await gmon.stop("SIGKILL");
        }
        assertEquals(leftovers(), []);
      });
    }
  });
}

Deno.test("matrix e2e: summary", () => {
  console.log(`\nmatrix:\n  ${results.join("\n  ")}`);
  assert(results.some((r) => r.endsWith(" ok")), "at least one build ran");
});
