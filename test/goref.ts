/**
 * Builds and runs the Go reference programs under test/fixtures/ that the tests compare gmon against.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** Builds test/fixtures/<name> into a fresh temp dir once per call and returns the binary's path. */
export async function buildGoRef(name: string): Promise<string> {
  const dir = fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));
  const out = await Deno.makeTempDir({ prefix: `gmon-${name}-` });
  const bin = `${out}/${name}`;
  const { code, stderr } = await new Deno.Command("go", {
    args: ["build", "-o", bin, "."],
    cwd: dir,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`go build ${name} failed:\n${new TextDecoder().decode(stderr)}`);
  return bin;
}

/** Result of one run of a reference program. */
export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin args...` with `stdin` as its standard input. */
export async function runGoRef(bin: string, args: readonly string[], stdin: string): Promise<RunResult> {
  const child = new Deno.Command(bin, { args: [...args], stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder("utf-8", { fatal: true });
  return { status: code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

/** Removes the temp dir a binary from {@link buildGoRef} lives in. */
export async function removeGoRef(bin: string): Promise<void> {
  await Deno.remove(bin.slice(0, bin.lastIndexOf("/")), { recursive: true });
}
