/**
 * Go toolchains for test matrices: the machine's `go`, Debian's golang-1.19-go, and any release the
 * module proxy serves (through GOTOOLCHAIN, cached in the module cache so a second run is fast).
 * Fixtures are built once per run and build kind into a temp dir.
 *
 * A release that can't be had gives a skip reason: callers print it, never skip silently.
 *
 * ```ts
 * const r = buildWith("go1.22", "test/fixtures/symbols", ["-ldflags=-s -w"]);
 * if ("skip" in r) console.log(`skipped: ${r.skip}`);
 * else console.log(r.path);
 * ```
 *
 * @module
 */

const decoder = new TextDecoder();

/** Debian's golang-1.19-go. */
const DEBIAN_119 = "/usr/lib/go-1.19/bin/go";

function go(bin: string, args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const r = new Deno.Command(bin, { args, env, cwd, stdin: "null" }).outputSync();
    return { ok: r.code === 0, out: decoder.decode(r.stdout).trim(), err: decoder.decode(r.stderr).trim() };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

let proxyVersions: string[] | undefined;

/** Releases the module proxy lists as golang.org/toolchain linux-amd64 builds, e.g. "go1.22.12". */
function listedReleases(): string[] {
  if (proxyVersions === undefined) {
    const r = go("go", ["list", "-m", "-versions", "golang.org/toolchain"], { GOFLAGS: "-mod=mod" });
    proxyVersions = r.ok
      ? r.out.split(/\s+/).flatMap((v) => v.match(/^v0\.0\.1-(go1\.\d+\.\d+)\.linux-amd64$/)?.[1] ?? [])
      : [];
  }
  return proxyVersions;
}

/** "go1.N" -> the newest "go1.N.P" the proxy lists (or null); "go1.N.P" as is. */
export function resolveRelease(release: string): string | null {
  if (/^go1\.\d+\.\d+$/.test(release)) return release;
  const m = release.match(/^go1\.(\d+)$/);
  if (!m) return null;
  const patches = listedReleases()
    .filter((v) => v.startsWith(`${release}.`))
    .map((v) => Number(v.split(".")[2]))
    .sort((a, b) => b - a);
  return patches.length > 0 ? `${release}.${patches[0]}` : null;
}

const goCache = new Map<string, string | null>();

/**
 * The go binary for `release`: "go" (the machine's), "go1.19" (Debian's package), "go1.N" (newest
 * patch on the proxy) or "go1.N.P". Null when it can't be had.
 */
export function goFor(release: string): string | null {
  if (release === "go" || release === "machine") return "go";
  if (goCache.has(release)) return goCache.get(release)!;
  let bin: string | null = null;
  const machine = go("go", ["env", "GOVERSION"]).out;
  if (release === machine || machine.startsWith(`${release}.`)) {
    bin = "go";
  } else if (release === "go1.19" || release.startsWith("go1.19.")) {
    bin = go(DEBIAN_119, ["version"]).ok ? DEBIAN_119 : null;
  } else {
    const exact = resolveRelease(release);
    if (exact !== null) {
      // GOTOOLCHAIN makes the machine's go fetch the release; its GOROOT holds a go we can run directly.
      const r = go("go", ["env", "GOROOT"], { GOTOOLCHAIN: exact, GOFLAGS: "-mod=mod" });
      if (r.ok && go(`${r.out}/bin/go`, ["version"]).ok) bin = `${r.out}/bin/go`;
    }
  }
  goCache.set(release, bin);
  return bin;
}

let buildRoot: string | undefined;
const built = new Map<string, { path: string } | { skip: string }>();

/**
 * Builds `fixtureDir` (a main package with its go.mod) with `release` and `go build` `flags`, once
 * per run (`env` adds variables, e.g. CGO_ENABLED); the fixture is copied and its go.mod's go line set to the release's, so older
 * toolchains accept it. Returns the binary, or why it was skipped.
 */
export function buildWith(
  release: string,
  fixtureDir: string,
  flags: string[],
  env: Record<string, string> = {},
): { path: string } | { skip: string } {
  const key = JSON.stringify([release, fixtureDir, flags, env]);
  const hit = built.get(key);
  if (hit) return hit;
  const result = build(release, fixtureDir, flags, env);
  built.set(key, result);
  return result;
}

/** Copies the files and directories under `from` into a new directory `to`. */
function copyTree(from: string, to: string) {
  Deno.mkdirSync(to);
  for (const entry of Deno.readDirSync(from)) {
    if (entry.isDirectory) copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else if (entry.isFile) Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

function build(
  release: string,
  fixtureDir: string,
  flags: string[],
  env: Record<string, string>,
): { path: string } | { skip: string } {
  const bin = goFor(release);
  if (bin === null) return { skip: `${release}: toolchain not available (module proxy or package missing)` };
  const version = go(bin, ["env", "GOVERSION"], { GOTOOLCHAIN: "local" }).out;
  const minor = version.match(/^go1\.(\d+)/)?.[1];
  if (minor === undefined) return { skip: `${release}: ${bin} reports no version` };
  buildRoot ??= Deno.makeTempDirSync({ prefix: "gmon-toolchains-" });
  const n = built.size;
  const src = `${buildRoot}/src-${n}`;
  copyTree(fixtureDir, src);
  const mod = `${src}/go.mod`;
  try {
    const text = Deno.readTextFileSync(mod).replace(/^go \S+$/m, `go 1.${minor}`).replace(
      /^toolchain .*$/m,
      "",
    );
    Deno.writeTextFileSync(mod, text);
  } catch { /* a fixture without go.mod builds as a package of its own */ }
  const out = `${buildRoot}/bin-${n}`;
  const r = go(bin, ["build", ...flags, "-o", out, "."], {
    GOFLAGS: "-mod=mod",
    GOTOOLCHAIN: "local",
    ...env,
  }, src);
  if (!r.ok) throw new Error(`${version} go build ${flags.join(" ")} ${fixtureDir}: ${r.err}`);
  return { path: out };
}
