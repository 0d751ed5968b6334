/**
 * What the end-to-end tests share: Go fixtures built in the test run, gmon started through the
 * checkout's launcher (or the single file GMON_BIN names) with its output collected line by line, and a
 * look at the kernel for leftovers.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

export const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The gmon under test: the checkout's launcher, or the file GMON_BIN names: scripts/test's second pass
 * sets it to a copy of dist/gmon, alone in a directory, run with an empty HOME.
 */
export const gmonBin = Deno.env.get("GMON_BIN") ?? `${root}/scripts/gmon`;
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

  /** `before`: shell commands run first, in the process that then becomes gmon (e.g. `ulimit -n 128`). */
  constructor(args: string[], before: string[] = []) {
    this.child = new Deno.Command(before.length === 0 ? gmonBin : "sh", {
      args: before.length === 0 ? args : ["-c", `${before.join("; ")}; exec "$0" "$@"`, gmonBin, ...args],
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
        // Its notes (all but the goroutines' own lines) tell what it saw instead.
        const notes = this.lines.filter((l) => !/ msg=runtime\.\S+ goroutine_id=/.test(l)).slice(-30);
        throw new Error(
          `timed out waiting for ${what}; stderr: ${this.stderr}; last: ${this.lines.slice(-3)}; notes:\n${
            notes.join("\n")
          }`,
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
  const r = await new Deno.Command(gmonBin, { args, stdin: "null" }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/**
 * gmon's BPF programs still in the kernel (bpftool's view, one line each), leaving out those held by a
 * gmon of another checkout (another worktree's tests may run beside these): a program held by nobody,
 * by a gmon of this test run, or by anything else counts.
 */
export function leftovers(): string[] {
  // The kernel frees a program a moment after its last holder exits, and a gmon that was just told to
  // stop (this test's, or another checkout's) takes a moment to: look again, for up to three seconds.
  for (let tries = 1;; tries++) {
    const left = leftoversNow();
    if (tries === 30 || left.length === 0) return left.map((l) => l.line);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
}

function leftoversNow(): { line: string; holders: number }[] {
  const progs = new Deno.Command("bpftool", { args: ["prog", "show"] }).outputSync();
  const text = new TextDecoder().decode(progs.stdout);
  const ours = text.split("\n").filter((l) => /name gmon_(create|exit)\b/.test(l));
  if (ours.length === 0) return [];
  const holders = progHolders();
  return ours.flatMap((line) => {
    const pids = holders.get(line.split(":")[0].trim()) ?? [];
    return pids.length === 0 || pids.some((pid) => !othersGmon(pid)) ? [{ line, holders: pids.length }] : [];
  });
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

/**
 * A gmon (or a tool loading gmon's programs, like a benchmark) of another checkout: another worktree's
 * tests and benchmarks may run beside these. Ours run a script of this checkout, or, in
 * the single file's pass, run from GMON_BIN or from its copy unpacked under this run's HOME; any other
 * Deno or gmon is another's. Anything else holding gmon's programs counts as ours.
 */
function othersGmon(pid: number): boolean {
  try {
    const cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
    const exe = Deno.readLinkSync(`/proc/${pid}/exe`);
    const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").slice(1);
    // The script run tells the checkout, not the Deno running it (a checkout may share another's tools).
    const scripts = args.filter((a) => a !== "" && !a.startsWith("-")).map((a) =>
      a.startsWith("/") ? a : `${cwd}/${a}`
    );
    const paths = scripts.length > 0 ? scripts : [exe];
    const home = Deno.env.get("HOME");
    const single = Deno.env.get("GMON_BIN") !== undefined;
    const ours = (p: string) =>
      p.startsWith(`${root}/`) ||
      (single && (p === Deno.realPathSync(gmonBin) || (home !== undefined && p.startsWith(`${home}/`))));
    if (paths.some(ours)) return false;
    return exe.endsWith("/deno") || exe.endsWith("/gmon");
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

/** Creation and exit events gmon logged, by goid (of one process). */
export function events(lines: string[]) {
  const created = new Map<number, Map<string, string>>();
  const exited = new Map<number, Map<string, string>>();
  for (const line of lines) {
    const a = attrs(line);
    if (a.get("msg") === "runtime.newproc1") created.set(Number(a.get("goroutine_id")), a);
    if (a.get("msg") === "runtime.goexit1") exited.set(Number(a.get("goroutine_id")), a);
  }
  return { created, exited };
}

export function stackOf(a: Map<string, string>): string[] {
  const out: string[] = [];
  for (let i = 0; a.has(`stack.${i}`); i++) out.push(a.get(`stack.${i}`)!);
  return out;
}

/** Every spawned goroutine has a creation whose stack shows its go statement, and an exit. */
export function checkAllSeen(lines: string[], spawned: Spawned[]) {
  const { created, exited } = events(lines);
  const misses: string[] = [];
  for (const s of spawned) {
    const c = created.get(s.goid);
    const want = `${s.func} at ${s.site}`;
    if (c === undefined) misses.push(`no creation of goroutine ${s.goid} (${want})`);
    else if (!stackOf(c).includes(want)) {
      misses.push(`goroutine ${s.goid}: no frame "${want}" in ${stackOf(c)}`);
    }
    if (!exited.has(s.goid)) misses.push(`no exit of goroutine ${s.goid}`);
  }
  assertEquals(misses, []);
}
