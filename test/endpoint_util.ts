/**
 * What the endpoint's end-to-end tests share: the leaker fixture driven over stdin, a free port, polling,
 * go tool pprof -traces, promtool and /metrics lookups.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";
import { parseTraces } from "./pprof_traces.ts";
import { promtool } from "./promtool.ts";

/** A port nothing listens on right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The leaker fixture, driven line by line over stdin. */
export class Leaker {
  readonly child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #rest = "";

  constructor(bin: string, leak: number, churn: number) {
    this.child = new Deno.Command(bin, {
      args: ["-leak", String(leak), "-churn", String(churn)],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  async expect(line: string): Promise<void> {
    for (;;) {
      const nl = this.#rest.indexOf("\n");
      if (nl >= 0) {
        const got = this.#rest.slice(0, nl);
        this.#rest = this.#rest.slice(nl + 1);
        assertEquals(got, line);
        return;
      }
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`leaker ended before "${line}"`);
      this.#rest += value;
    }
  }

  async send(cmd: string, reply?: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(cmd + "\n"));
    if (reply !== undefined) await this.expect(reply);
  }

  async quit(): Promise<void> {
    try {
      await this.send("quit");
      await this.#writer.close();
    } catch { /* gone */ }
    await this.#lines.cancel().catch(() => {});
    await this.child.status;
  }
}

export async function get(url: string): Promise<Response> {
  const r = await fetch(url);
  assertEquals(r.status, 200, url);
  return r;
}

/** Polls `probe` until it returns true (events reach gmon within milliseconds). */
export async function until(what: string, probe: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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
