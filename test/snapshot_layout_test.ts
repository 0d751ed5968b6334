/**
 * What reading goroutines rests on, per release: the runtime.g/gobuf/sudog offsets gmon's table holds
 * for stripped binaries equal each release's DWARF; the wait reason strings generated from each
 * release's source equal the strings in its binaries; decoding runtime.forEachGRace finds the same
 * allglen/allgptr as the symbol table.
 */
import { assert, assertEquals } from "./assert.ts";
import { root } from "./harness.ts";
import { buildWith } from "./toolchains.ts";
import { TargetImage } from "../src/target/wasm.ts";
import { dwarfLayout, TABLE_MINORS, tableLayout } from "../src/snapshot/layout.ts";
import { decodeAllgs } from "../src/snapshot/allgs.ts";
import { WAIT_REASONS } from "../src/snapshot/waitreasons.ts";
import { ProcessMemory } from "../src/snapshot/memory.ts";

const RELEASES = ["go1.19", "go1.20", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "machine", "go1.27"];

/** Reads runtime.waitReasonStrings out of a running non-PIE process of `bin`. */
async function waitReasonsOf(bin: string, image: TargetImage): Promise<string[]> {
  const sym = image.symbol("runtime.waitReasonStrings");
  assert(sym !== null, "the default build has a symbol table");
  const child = new Deno.Command(bin, { args: ["-out", "/dev/null"], stdin: "piped", stdout: "piped" })
    .spawn();
  try {
    const reader = child.stdout.getReader();
    await reader.read();
    reader.releaseLock();
    const mem = new ProcessMemory(child.pid);
    const headers = new DataView(mem.read(sym.addr, sym.size)!.buffer);
    const out: string[] = [];
    for (let off = 0; off < sym.size; off += 16) {
      const ptr = Number(headers.getBigUint64(off, true));
      const len = Number(headers.getBigUint64(off + 8, true));
      out.push(len === 0 ? "" : new TextDecoder().decode(mem.read(ptr, len)!));
    }
    return out;
  } finally {
    await child.stdin.close();
    await child.stdout.cancel();
    await child.status;
  }
}

for (const release of RELEASES) {
  Deno.test(`snapshot layout: ${release} agrees with its DWARF and binary`, async () => {
    const built = buildWith(release, `${root}/test/fixtures/parked`, []);
    if ("skip" in built) {
      console.log(`skipped ${release}: ${built.skip}`);
      return;
    }
    const image = TargetImage.openFile(built.path);
    const minor = Number(/^go1\.(\d+)/.exec(image.info().goVersion!)![1]);
    assert(TABLE_MINORS.includes(minor), `go1.${minor} is in the table`);
    assertEquals(tableLayout(minor), dwarfLayout(image));
    assertEquals(WAIT_REASONS.get(minor), await waitReasonsOf(built.path, image));
    const decoded = decodeAllgs(image);
    assertEquals(
      [decoded.allglen, decoded.allgptr],
      [image.symbol("runtime.allglen")!.addr, image.symbol("runtime.allgptr")!.addr],
    );
  });
}
