/**
 * What the end-to-end tests share: Go fixtures built in the test run, gmon started through the
 * checkout's launcher with its output collected line by line, and a look at the kernel for leftovers.
 *
 * @module
 */
import { assert } from "./assert.ts";

export const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const built = new Map<string, string>();
let buildDir: string | undefined;

/** Builds test/fixtures/NAME with `go build` (plus `flags`) once per run; returns the binary's path. */
export function buildFixture(name: string, flags: string[] = [], env: Record<string, string> = {}): string {
  const key = JSON.stringify([name, flags, env]);
  const hit = built.get(key);
  if (hit) return hit;
  buildDir ??= Deno.makeTempDirSync({ prefix: "gmon-fixtures-" });
  const out = `${buildDir}/${name}-${built.size}`;
  const r = new Deno.Command("go", {
    args: ["build", ...flags, "-o", out, "."],
    cwd: `${root}/test/fixtures/${name}`,
    env: { GOFLAGS: "-mod=mod", ...env },
  }).outputSync();
  assert(r.code === 0, `go build ${name}: ${new TextDecoder().decode(r.stderr)}`);
  built.set(key, out);
  return out;
}

/** A running gmon with its stdout and stderr gathered. */
export class Gmon {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  readonly #done: Promise<void>;

  constructor(args: string[]) {
    this.child = new Deno.Command(`${root}/scripts/gmon`, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#done = Promise.all([
      readLines(this.child.stdout, (l) => this.lines.push(l)),
      readLines(this.child.stderr, (l) => this.stderr += l + "\n"),
    ]).then(() => {});
  }

  /** Waits until a line satisfies `pred` (or gmon ends, or `ms` pass) and returns it. */
  async waitFor(pred: (line: string) => boolean, what: string, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; stderr: ${this.stderr}; last: ${this.lines.slice(-3)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for the `msg=attached` line. */
  attached(): Promise<string> {
    return this.waitFor((l) => l.includes(" msg=attached "), "msg=attached");
  }

  /** Sends `signal` and waits for gmon to end; returns its exit status. */
  async stop(signal: Deno.Signal = "SIGINT"): Promise<number> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    return await this.wait();
  }

  /** Waits for gmon to end by itself; returns its exit status. */
  async wait(): Promise<number> {
    const status = await this.child.status;
    await this.#done;
    return status.code;
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, each: (line: string) => void): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    parts.forEach(each);
  }
  if (rest) each(rest);
}

/** Runs gmon to completion with `args`; returns its status, stdout and stderr. */
export async function runGmon(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(`${root}/scripts/gmon`, { args, stdin: "null" }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/**
 * gmon's BPF programs still in the kernel (bpftool's view, one line each), leaving out those held by
 * processes of other checkouts (another worktree's tests and benchmarks may run beside these): a
 * program held by nobody, or by a process of this checkout, counts. A program is counted only if it is
 * still there after its holders were looked for: one being unloaded meanwhile is not left over.
 */
export function leftovers(): string[] {
  const ours = gmonPrograms();
  if (ours.length === 0) return [];
  const holders = progHolders();
  const still = new Set(gmonPrograms());
  return ours.filter((l) => {
    const pids = holders.get(l.split(":")[0].trim()) ?? [];
    return still.has(l) && (pids.length === 0 || pids.some(thisCheckouts));
  });
}

function gmonPrograms(): string[] {
  const progs = new Deno.Command("bpftool", { args: ["prog", "show"] }).outputSync();
  const text = new TextDecoder().decode(progs.stdout);
  return text.split("\n").filter((l) => /name gmon_(create|exit)\b/.test(l));
}

/** prog id -> pids holding a file descriptor to it (from /proc/PID/fdinfo). */
function progHolders(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const p of Deno.readDirSync("/proc")) {
    const pid = Number(p.name);
    if (!Number.isInteger(pid)) continue;
    try {
      for (const fd of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
        const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd.name}`);
        const id = /^prog_id:\s*(\d+)/m.exec(info)?.[1];
        if (id !== undefined) out.set(id, [...(out.get(id) ?? []), pid]);
      }
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}

/** A process of this checkout: it runs from it, or names a file in it (its gmon runs our main.ts). */
function thisCheckouts(pid: number): boolean {
  try {
    const inside = (path: string) => path === root || path.startsWith(`${root}/`);
    if (inside(Deno.readLinkSync(`/proc/${pid}/cwd`))) return true;
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").some(inside);
  } catch {
    return false;
  }
}

/** Parses a slog text line into its attributes (values unquoted). */
export function attrs(line: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of line.matchAll(re)) {
    out.set(m[1], m[2].startsWith('"') ? JSON.parse(m[2]) : m[2]);
  }
  return out;
}

/** A fixture's `G <goid> <func> <file:line>` report line. */
export interface Spawned {
  goid: number;
  func: string;
  site: string;
}

/** Runs `bin` with `args` and parses its G lines. */
export async function runSpawner(bin: string, args: string[]): Promise<Spawned[]> {
  const r = await new Deno.Command(bin, { args }).output();
  assert(r.code === 0, `${bin} failed: ${new TextDecoder().decode(r.stderr)}`);
  return parseSpawned(new TextDecoder().decode(r.stdout));
}

/** Parses `G <goid> <func> <file:line>` lines. */
export function parseSpawned(text: string): Spawned[] {
  return text.split("\n").filter((l) => l.startsWith("G ")).map((l) => {
    const [, goid, func, site] = l.split(" ");
    return { goid: Number(goid), func, site };
  });
}
