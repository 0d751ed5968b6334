/**
 * The per-release table of runtime.g's layout (used for binaries without DWARF) against what each
 * release's own DWARF says.
 */
import { assertEquals } from "./assert.ts";
import { root } from "./harness.ts";
import { buildWith } from "./toolchains.ts";
import { parseGoVersion, tableGoidOffset } from "../src/target/goruntime.ts";
import { TargetImage } from "../src/target/wasm.ts";

const RELEASES = ["go1.19", "go1.20", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "machine", "go1.27"];

Deno.test("goid offset table agrees with each release's DWARF", () => {
  const checked: string[] = [];
  for (const release of RELEASES) {
    const built = buildWith(release, `${root}/test/fixtures/symbols`, []);
    if ("skip" in built) {
      console.log(`skipped ${release}: ${built.skip}`);
      continue;
    }
    const info = TargetImage.open(Deno.readFileSync(built.path)).info();
    const goRelease = parseGoVersion(info.goVersion!)!;
    assertEquals([info.goVersion, tableGoidOffset(goRelease)], [info.goVersion, info.goidOffset]);
    checked.push(`${info.goVersion}=${info.goidOffset}`);
  }
  console.log(`goid offsets: ${checked.join(" ")}`);
  assertEquals(checked.length >= 8, true, "most releases checked");
});
