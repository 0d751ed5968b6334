/**
 * What the endpoint's end-to-end tests share besides the leaker (test/leaker.ts): requests that must
 * succeed, go tool pprof -traces, promtool and /metrics lookups.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";
import { parseTraces } from "./pprof_traces.ts";
import { promtool } from "./promtool.ts";

export async function get(url: string): Promise<Response> {
  const r = await fetch(url);
  assertEquals(r.status, 200, url);
  return r;
}

export async function pprofTraces(url: string) {
  // pprof keeps a copy of what it fetches: in a directory of ours.
  const dir = await Deno.makeTempDir();
  try {
    const r = await new Deno.Command("go", {
      args: ["tool", "pprof", "-traces", url],
      stderr: "piped",
      env: { PPROF_TMPDIR: dir },
    }).output();
    const dec = new TextDecoder();
    assertEquals(r.code, 0, dec.decode(r.stderr));
    return parseTraces(dec.decode(r.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** promtool must accept the exposition. */
export async function checkMetrics(text: string): Promise<void> {
  const r = await promtool(text);
  assertEquals(r.code, 0, r.out);
}

export function metric(text: string, name: string, pid: number, site: string): number | undefined {
  const prefix = `${name}{pid="${pid}",site="${site}"} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}
