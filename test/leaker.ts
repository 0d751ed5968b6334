/**
 * Driving test/fixtures/leaker from a test: it leaks and releases goroutines on command, line by line
 * over stdin, and answers each command when it is done.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";

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

  /** Starts `bin` (the leaker fixture) leaking `leak` goroutines per `leak` command, churning `churn`. */
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

/** Polls `probe` until it returns true (events reach gmon within milliseconds). */
export async function until(what: string, probe: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
