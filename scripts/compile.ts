/**
 * `deno task compile`: builds the single executable dist/gmon, the BPF object and the WASM module
 * embedded (src/assets.ts and src/target/wasm.ts import them as bytes, so the run from a checkout
 * goes through the same code). deno compile needs its `denort` base binary; where it can't be
 * downloaded, point DENORT_BIN at one of the same Deno version.
 */
const root = new URL("..", import.meta.url).pathname;
const version = Deno.version.deno;

function fail(msg: string): never {
  console.error(`compile: ${msg}`);
  Deno.exit(1);
}

const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    if (!Deno.statSync(denort).isFile) fail(`DENORT_BIN=${denort} is not a file`);
  } catch {
    fail(`DENORT_BIN=${denort} does not exist`);
  }
} else {
  const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  const cached = `${denoDir}/dl/release/v${version}/denort-x86_64-unknown-linux-gnu.zip`;
  try {
    Deno.statSync(cached);
  } catch {
    fail(`no denort ${version} base binary (none cached, none downloadable here): set DENORT_BIN to one`);
  }
}

for (
  const asset of ["build/gmon.bpf.o", "build/gmon.wasm", "build/uPlot.iife.min.js", "build/uPlot.min.css"]
) {
  try {
    Deno.statSync(`${root}${asset}`);
  } catch {
    fail(`${asset} is missing: run scripts/setup first`);
  }
}

const out = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--quiet",
    "--config",
    `${root}deno.json`,
    ...Deno.readTextFileSync(`${root}scripts/permissions`).trim().split(/\s+/),
    "--output",
    `${root}dist/gmon`,
    `${root}main.ts`,
  ],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (out.code !== 0) fail("deno compile failed");
console.error(`compile: wrote ${root}dist/gmon`);
