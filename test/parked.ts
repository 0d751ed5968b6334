/**
 * The parked fixture (goroutines parked in every common way, and its own runtime.Stack(all)) and the
 * goroutine blocks of a Go dump, for the snapshot tests.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";

/** Goroutine blocks of a Go dump by goid. */
export function blocks(dump: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const b of dump.split("\n\n")) {
    const m = /^goroutine (\d+) \[/.exec(b.trim());
    if (m) out.set(Number(m[1]), b.trim());
  }
  return out;
}

/** A parked fixture running; its runtime.Stack(all) text is `reference`. */
export async function startParked(
  bin: string,
): Promise<{ child: Deno.ChildProcess; reference: string; stop: () => Promise<void> }> {
  const out = await Deno.makeTempFile();
  const child = new Deno.Command(bin, { args: ["-out", out], stdin: "piped", stdout: "piped" }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assertEquals(new TextDecoder().decode(first.value).trim(), "ready");
  reader.releaseLock();
  return {
    child,
    reference: Deno.readTextFileSync(out),
    stop: async () => {
      await child.stdin.close();
      await child.stdout.cancel();
      await child.status;
      Deno.removeSync(out);
    },
  };
}
