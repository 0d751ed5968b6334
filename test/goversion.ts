/**
 * A Go executable made to claim another release: its build info's version rewritten (same length), as
 * a release gmon has no layout for would say.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

const decoder = new TextDecoder();

/** A copy of `bin` whose .go.buildinfo claims `version` (same length as the real one). */
export async function withGoVersion(bin: string, version: string): Promise<string> {
  const bytes = Deno.readFileSync(bin);
  const magic = Uint8Array.from([0xff, ...new TextEncoder().encode(" Go buildinf:")]);
  const at = indexOf(bytes, magic);
  assert(at >= 0, "build info");
  const real = /go1\.\d+\.\d+/.exec(decoder.decode(bytes.subarray(at, at + 64)))![0];
  assertEquals(real.length, version.length, "same length");
  const v = indexOf(bytes, new TextEncoder().encode(real), at);
  bytes.set(new TextEncoder().encode(version), v);
  const out = await Deno.makeTempFile();
  Deno.writeFileSync(out, bytes, { mode: 0o755 });
  return out;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
