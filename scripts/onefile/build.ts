/**
 * Builds a self-extracting single file: scripts/onefile/stub.sh, padded to a whole number of 4 KiB
 * blocks, then a gzipped tar of the files to carry, which must include `deno`, `deno.json` and
 * `main.ts` at the top. The stub checks, unpacks once per content hash and execs
 * `deno run` with the given permissions (see stub.sh).
 *
 * ```ts
 * await buildSelfExtracting({
 *   out: "dist/gmon",
 *   permissions: ["--allow-read"],
 *   trees: [{ dir: ".", paths: ["main.ts", "deno.json"] }, { dir: ".tools/node_modules/deno", paths: ["deno"] }],
 * });
 * ```
 *
 * @module
 */

/** Paths (files or directories) under `dir`, archived as they are named there. */
export interface Tree {
  dir: string;
  paths: string[];
}

/** What {@link buildSelfExtracting} makes. */
export interface SelfExtractingOptions {
  out: string;
  /** Deno permission flags, e.g. `--allow-env=PATH`. */
  permissions: string[];
  trees: Tree[];
}

/** Facts about a file written by {@link buildSelfExtracting}. */
export interface Built {
  size: number;
  offset: number;
  payloadSize: number;
  sha256: string;
}

const STUB = new URL("./stub.sh", import.meta.url);
const BLOCK = 4096;

async function run(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  const dec = new TextDecoder();
  if (r.code !== 0) throw new Error(`${cmd} failed: ${dec.decode(r.stderr).trim()}`);
  return dec.decode(r.stdout);
}

/**
 * The payload: the same bytes for the same files (sorted names, no times, no owners), so that its
 * hash, the name of its unpacked directory, changes only with the content.
 */
async function archive(trees: Tree[], out: string): Promise<void> {
  const args = [
    "--create",
    "--file",
    out,
    "--use-compress-program",
    "gzip -n",
    "--sort=name",
    "--format=gnu",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
  ];
  for (const t of trees) {
    // tar reads -C between names, so no `--`: a name must not look like an option.
    const odd = t.paths.find((p) => p.startsWith("-"));
    if (odd !== undefined) throw new Error(`${odd}: a path starting with "-"`);
    args.push("-C", t.dir, ...t.paths);
  }
  await run("tar", args);
}

/** `cksum`'s CRC-32 of a file (POSIX's algorithm: what the stub computes on every run). */
async function crc32(path: string): Promise<string> {
  return (await run("cksum", [path])).split(" ")[0];
}

/** Fills the stub's placeholders and pads it: the payload starts on the block after it. */
export function stub(template: string, payloadSize: number, sha256: string, crc: string, perms: string[]) {
  for (const p of perms) {
    // Words the stub splices into a command line unquoted: nothing a shell would read specially.
    if (!/^--[a-z-]+(=[A-Za-z0-9_,./:-]+)?$/.test(p)) throw new Error(`unexpected permission flag ${p}`);
  }
  const fill = (offset: number) =>
    template
      .replaceAll("@TOTAL@", String(offset + payloadSize))
      .replaceAll("@OFFSET@", String(offset))
      .replaceAll("@PAYLOAD_SIZE@", String(payloadSize))
      .replaceAll("@SHA256@", sha256)
      .replaceAll("@CRC@", crc)
      .replaceAll("@PERMISSIONS@", perms.join(" "));
  // The numbers' digits depend on the offset; a generous margin keeps the offset fixed.
  const offset = Math.ceil((new TextEncoder().encode(fill(0)).length + 64) / BLOCK) * BLOCK;
  let text = fill(offset);
  const used = new TextEncoder().encode(text).length;
  // Padding after `exit 1`, which the shell never reaches: a comment, then the payload.
  text += "#".repeat(offset - used - 1) + "\n";
  const bytes = new TextEncoder().encode(text);
  if (bytes.length !== offset) throw new Error(`stub is ${bytes.length} bytes, not ${offset}`);
  return bytes;
}

/** Writes the self-extracting file to `opts.out` (atomically: a temp file renamed over it). */
export async function buildSelfExtracting(opts: SelfExtractingOptions): Promise<Built> {
  const work = await Deno.makeTempDir({ prefix: "gmon-onefile-" });
  try {
    const payload = `${work}/payload.tar.gz`;
    await archive(opts.trees, payload);
    const data = await Deno.readFile(payload);
    const sha256 = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", data)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const head = stub(
      await Deno.readTextFile(STUB),
      data.length,
      sha256,
      await crc32(payload),
      opts.permissions,
    );
    const dir = opts.out.slice(0, opts.out.lastIndexOf("/") + 1) || ".";
    await Deno.mkdir(dir, { recursive: true });
    const file = new Uint8Array(head.length + data.length);
    file.set(head);
    file.set(data, head.length);
    const tmp = await Deno.makeTempFile({ dir, prefix: ".gmon-" });
    try {
      await Deno.writeFile(tmp, file);
      await Deno.chmod(tmp, 0o755);
      await Deno.rename(tmp, opts.out);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    return { size: head.length + data.length, offset: head.length, payloadSize: data.length, sha256 };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
