/**
 * `deno task compile [--output FILE]`: builds dist/gmon, one executable that needs nothing beside it
 * (no Deno, no checkout, no network). Two routes to the same program:
 *
 * - `deno compile`, wherever a `denort` base binary of this Deno's version can be had: DENORT_BIN,
 *   Deno's cache, or its download from dl.deno.land. The BPF object and the WASM module are embedded
 *   (src/assets.ts and src/target/wasm.ts import them as bytes).
 * - Otherwise a self-extracting file (scripts/onefile/): a sh stub, then this Deno binary, gmon's
 *   sources, their npm packages and the built assets, unpacked once per content hash and run with
 *   `deno run` and the same permissions (scripts/permissions).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { buildSelfExtracting } from "./onefile/build.ts";

const root = new URL("..", import.meta.url).pathname;
const version = Deno.version.deno;
const DENORT_URL = `https://dl.deno.land/release/v${version}/denort-x86_64-unknown-linux-gnu.zip`;

function fail(msg: string): never {
  console.error(`compile: ${msg}`);
  Deno.exit(1);
}

const { values } = parseArgs({ args: Deno.args, options: { output: { type: "string" } } });
const out = values.output ?? `${root}dist/gmon`;

/** Where `deno compile` gets its denort, or why it can't: then the self-extracting route. */
async function denort(): Promise<{ from: string } | { none: string }> {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin !== undefined) {
    // Asked for by name: a wrong path is a mistake to report, not a reason to build something else.
    try {
      if (!Deno.statSync(bin).isFile) fail(`DENORT_BIN=${bin} is not a file`);
    } catch {
      fail(`DENORT_BIN=${bin} does not exist`);
    }
    return { from: `DENORT_BIN=${bin}` };
  }
  const home = Deno.env.get("HOME");
  const denoDir = Deno.env.get("DENO_DIR") ?? (home ? `${home}/.cache/deno` : undefined);
  const cached = `${denoDir}/dl/release/v${version}/denort-x86_64-unknown-linux-gnu.zip`;
  try {
    if (denoDir !== undefined && Deno.statSync(cached).isFile) return { from: cached };
  } catch { /* not cached */ }
  try {
    const r = await fetch(DENORT_URL, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
    await r.body?.cancel();
    if (r.ok) return { from: DENORT_URL };
    return { none: `DENORT_BIN unset, none in ${denoDir}, ${DENORT_URL} answers ${r.status}` };
  } catch (e) {
    const why = (e as Error).message.split("\n")[0];
    return { none: `DENORT_BIN unset, none in ${denoDir}, dl.deno.land unreachable (${why})` };
  }
}

/** What gmon imports from build/ (src/assets.ts, src/target/wasm.ts, src/state/core.ts, src/endpoint/page.ts). */
const BUILD_ASSETS = [
  "build/gmon.bpf.o",
  "build/gmon.wasm",
  "build/drain.wasm",
  "build/uPlot.iife.min.js",
  "build/uPlot.min.css",
];

for (const asset of [...BUILD_ASSETS, "node_modules"]) {
  try {
    Deno.statSync(`${root}${asset}`);
  } catch {
    fail(`${asset} is missing: run scripts/setup first`);
  }
}
// The commit -version prints, carried in build/version.json.
if ((await new Deno.Command(`${root}scripts/stamp`).output()).code !== 0) fail("scripts/stamp failed");
const permissions = Deno.readTextFileSync(`${root}scripts/permissions`).trim().split(/\s+/);
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

const route = await denort();
if ("from" in route) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--quiet",
      "--config",
      `${root}deno.json`,
      ...permissions,
      "--output",
      out,
      `${root}main.ts`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (r.code !== 0) fail("deno compile failed");
  console.error(
    `compile: wrote ${out} (deno compile, ${mb(Deno.statSync(out).size)}; denort from ${route.from})`,
  );
} else {
  // The Deno running this task is the pinned one scripts/setup installed: it runs gmon from the file.
  const deno = Deno.execPath();
  if (!deno.endsWith("/deno")) fail(`${deno}: expected a Deno binary named deno`);
  try {
    const built = await buildSelfExtracting({
      out,
      permissions,
      trees: [
        {
          dir: root,
          paths: [
            "main.ts",
            "deno.json",
            "deno.lock",
            "src",
            "node_modules",
            ...BUILD_ASSETS,
            "build/version.json",
          ],
        },
        { dir: deno.slice(0, -"/deno".length), paths: ["deno"] },
      ],
    });
    console.error(
      `compile: wrote ${out} (self-extracting, ${mb(built.size)}): no denort ${version}: ${route.none}`,
    );
  } catch (e) {
    fail((e as Error).message);
  }
}
