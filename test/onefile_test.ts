/**
 * The self-extracting single file (scripts/onefile/), with the real stub and a small payload whose
 * `deno` is a shell script saying how it was started: where it unpacks, what it refuses, what a damaged
 * file does, and that it leaves Deno in its place. test/onefile_e2e_test.ts runs the real dist/gmon.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildSelfExtracting, type Built } from "../scripts/onefile/build.ts";

const dec = new TextDecoder();
const OTHER_UID = 1000;
/** Everything these tests make lives here, gone when the module is. */
const scratch = Deno.makeTempDirSync({ prefix: "gmon-onefile-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(scratch, { recursive: true }));

/** Stands in for Deno: prints how it was started, then does what FAKE_DO says. */
const FAKE_DENO = `#!/bin/sh
printf 'pid=%s\\n' "$$"
printf 'umask=%s\\n' "$(umask)"
printf 'path=%s\\n' "$(/usr/bin/printenv PATH || echo unset)"
printf 'deno_dir=%s\\n' "$DENO_DIR"
for a do printf 'arg=%s\\n' "$a"; done
[ -z "\${FAKE_MARK-}" ] || : >"$FAKE_MARK"
echo "deno's stderr" >&2
case \${FAKE_DO-} in
cat) exec /bin/cat ;;
sleep) exec /bin/sleep 60 ;;
esac
exit "\${FAKE_STATUS:-0}"
`;
const PERMISSIONS = ["--allow-read", "--allow-env=A,B"];

/** Builds the small self-extracting file once per run. */
const built: Promise<{ file: string; info: Built }> = (async () => {
  const work = Deno.makeTempDirSync({ dir: scratch });
  const src = `${work}/src`;
  Deno.mkdirSync(src);
  Deno.writeTextFileSync(`${src}/deno`, FAKE_DENO, { mode: 0o755 });
  Deno.chmodSync(`${src}/deno`, 0o755);
  Deno.writeTextFileSync(`${src}/deno.json`, "{}\n");
  Deno.writeTextFileSync(`${src}/main.ts`, "// not run\n");
  // Incompressible bytes: a payload with room for changed bytes everywhere.
  const blob = new Uint8Array(150_000);
  for (let i = 0; i < blob.length; i += 65536) crypto.getRandomValues(blob.subarray(i, i + 65536));
  Deno.writeFileSync(`${src}/blob`, blob);
  Deno.mkdirSync(`${work}/bin`, { mode: 0o755 });
  const file = `${work}/bin/gmon`;
  const info = await buildSelfExtracting({
    out: file,
    permissions: PERMISSIONS,
    trees: [{ dir: src, paths: ["blob", "deno", "deno.json", "main.ts"] }],
  });
  return { file, info };
})();

interface Run {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  pid: number;
}

interface RunOptions {
  /** Environment beyond PATH=/usr/bin:/bin; a key set to undefined is left out (PATH too). */
  env?: Record<string, string | undefined>;
  stdin?: string;
  /** The command line that runs the file, e.g. ["bash", file]; default [file]. */
  argv0?: string[];
}

/** Runs `file args` with only the environment given: nothing of the test's own leaks in. */
async function run(file: string, args: string[] = [], opts: RunOptions = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ PATH: "/usr/bin:/bin", ...opts.env })) {
    if (v !== undefined) env[k] = v;
  }
  const [cmd, ...pre] = opts.argv0 ?? [file];
  const child = new Deno.Command(cmd, {
    args: [...pre, ...args],
    clearEnv: true,
    env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const r = await child.output();
  return {
    code: r.code,
    signal: r.signal,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
    pid: child.pid,
  };
}

/** The fake deno's `key=value` lines; `arg` collects all its arguments. */
function said(stdout: string) {
  const lines = stdout.split("\n");
  const one = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
  return {
    pid: Number(one("pid")),
    umask: one("umask"),
    path: one("path"),
    denoDir: one("deno_dir"),
    args: lines.filter((l) => l.startsWith("arg=")).map((l) => l.slice(4)),
  };
}

/** A fresh empty directory (0700, root's). */
function tempDir(mode = 0o700): string {
  const d = Deno.makeTempDirSync({ dir: scratch });
  Deno.chmodSync(d, mode);
  return d;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function list(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("onefile: Deno takes the stub's place: same pid; permissions, arguments, stdio, status, umask, PATH", async () => {
  const { file, info } = await built;
  const home = tempDir();
  const dir = `${home}/.cache/gmon/${info.sha256}`;
  const umask = dec.decode(new Deno.Command("sh", { args: ["-c", "umask"] }).outputSync().stdout).trim();
  const r = await run(file, ["-path", "a b", "--", "-x"], {
    env: { HOME: home, PATH: "/opt/x:/usr/bin:/bin", FAKE_DO: "cat" },
    stdin: "stdin's line\n",
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr, "deno's stderr\n", "the stub adds nothing to stderr");
  assert(r.stdout.endsWith("stdin's line\n"), "stdin reaches deno, deno's stdout is the file's");
  const s = said(r.stdout);
  assertEquals(s.pid, r.pid, "exec: no process in between");
  assertEquals(s.args, [
    "run",
    "--quiet",
    "--no-prompt",
    "--cached-only",
    "--config",
    `${dir}/deno.json`,
    ...PERMISSIONS,
    `${dir}/main.ts`,
    "-path",
    "a b",
    "--",
    "-x",
  ]);
  assertEquals(s.denoDir, `${dir}/deno_dir`);
  assertEquals(s.path, "/opt/x:/usr/bin:/bin", "the caller's PATH");
  assertEquals(s.umask, umask, "the caller's umask, not the unpacking one");

  const again = await run(file, [], { env: { HOME: home, PATH: undefined, FAKE_STATUS: "7" } });
  assertEquals(again.code, 7, "deno's exit status");
  assertEquals(said(again.stdout).path, "unset", "an unset PATH stays unset");
  Deno.removeSync(home, { recursive: true });
});

Deno.test("onefile: signals reach Deno; the file itself is not left open", async () => {
  const { file } = await built;
  const home = tempDir();
  const child = new Deno.Command(file, {
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", HOME: home, FAKE_DO: "sleep" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Wait until the stub has become deno, and deno sleep.
  let cmdline = "";
  for (let i = 0; i < 1000 && !cmdline.startsWith("/bin/sleep"); i++) {
    await new Promise((r) => setTimeout(r, 10));
    cmdline = Deno.readTextFileSync(`/proc/${child.pid}/cmdline`).replaceAll("\0", " ");
  }
  assert(cmdline.startsWith("/bin/sleep"), cmdline);
  const open = [...Deno.readDirSync(`/proc/${child.pid}/fd`)].map((fd) => {
    try {
      return Deno.readLinkSync(`/proc/${child.pid}/fd/${fd.name}`);
    } catch {
      return "";
    }
  });
  assert(!open.includes(file), `fds: ${open}`);
  child.kill("SIGTERM");
  const status = await child.status;
  assertEquals(status.signal, "SIGTERM");
  Deno.removeSync(home, { recursive: true });
});

Deno.test("onefile: unpacks once per content hash into ~/.cache/gmon, private; later runs reuse it", async () => {
  const { file, info } = await built;
  const home = tempDir();
  assertEquals((await run(file, [], { env: { HOME: home } })).code, 0);
  const base = `${home}/.cache/gmon`;
  assertEquals(list(base), [info.sha256]);
  for (const d of [`${home}/.cache`, base, `${base}/${info.sha256}`]) {
    const st = Deno.lstatSync(d);
    assert(st.isDirectory, d);
    assertEquals([st.uid, st.mode! & 0o7777], [0, 0o700], d);
  }
  for (const e of Deno.readDirSync(`${base}/${info.sha256}`)) {
    const st = Deno.lstatSync(`${base}/${info.sha256}/${e.name}`);
    assertEquals([st.uid, st.mode! & 0o077], [0, 0], `${e.name}: root's, closed to others`);
  }
  const before = Deno.statSync(`${base}/${info.sha256}/main.ts`);
  const r = await run(file, [], { env: { HOME: home } });
  assertEquals(r.code, 0);
  assertEquals(said(r.stdout).denoDir, `${base}/${info.sha256}/deno_dir`);
  assertEquals(Deno.statSync(`${base}/${info.sha256}/main.ts`).ino, before.ino, "not unpacked again");
  assertEquals(list(base), [info.sha256]);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("onefile: first runs side by side end with one unpacked copy", async () => {
  const { file, info } = await built;
  const home = tempDir();
  const runs = await Promise.all([1, 2, 3, 4].map(() => run(file, [], { env: { HOME: home } })));
  for (const r of runs) assertEquals(r.code, 0, r.stderr);
  assertEquals(list(`${home}/.cache/gmon`), [info.sha256]);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("onefile: a new version removes versions unused for a day and dead unpacks, nothing else", async () => {
  const { file, info } = await built;
  const home = tempDir();
  const base = `${home}/.cache/gmon`;
  Deno.mkdirSync(base, { recursive: true, mode: 0o700 });
  Deno.chmodSync(`${home}/.cache`, 0o700);
  Deno.chmodSync(base, 0o700);
  const old = "a".repeat(64);
  const recent = "b".repeat(64);
  for (const d of [old, recent, ".unpack.dead12", "not-ours"]) Deno.mkdirSync(`${base}/${d}`);
  const twoDaysAgo = new Date(Date.now() - 2 * 86400_000);
  for (const d of [old, ".unpack.dead12", "not-ours"]) Deno.utimeSync(`${base}/${d}`, twoDaysAgo, twoDaysAgo);
  assertEquals((await run(file, [], { env: { HOME: home } })).code, 0);
  assertEquals(list(base), [info.sha256, recent, "not-ours"].sort());
  Deno.removeSync(home, { recursive: true });
});

/** Runs the file as `env` says with TMPDIR a sticky shared dir; returns the run and that dir. */
async function inTmp(file: string, env: Record<string, string | undefined>, wrap: string[] = []) {
  const tmp = tempDir(0o1777);
  const r = await run(file, [], { env: { TMPDIR: tmp, ...env }, argv0: [...wrap, file].filter((a) => a) });
  return { r, tmp };
}

Deno.test("onefile: HOME unset, read-only or not trusted: $TMPDIR/gmon-UID instead, nothing written in HOME", async () => {
  const { file, info } = await built;
  const others = tempDir(0o755);
  Deno.chownSync(others, OTHER_UID, OTHER_UID);
  const groupWritable = tempDir(0o775);
  const readOnly = tempDir();
  const cases: [string, Record<string, string | undefined>, string[]][] = [
    ["unset", { HOME: undefined }, []],
    ["someone else's", { HOME: others }, []],
    ["writable by a group", { HOME: groupWritable }, []],
    ["relative", { HOME: "home" }, []],
    // A read-only mount, in a mount namespace of its own.
    ["read-only", { HOME: readOnly }, [
      "unshare",
      "--mount",
      "sh",
      "-c",
      'mount -t tmpfs -o ro tmpfs "$HOME" && exec "$0" "$@"',
    ]],
  ];
  for (const [what, env, wrap] of cases) {
    const { r, tmp } = await inTmp(file, env, wrap);
    assertEquals(r.code, 0, `${what}: ${r.stderr}`);
    assertEquals(said(r.stdout).denoDir, `${tmp}/gmon-0/${info.sha256}/deno_dir`, what);
    assertEquals(Deno.lstatSync(`${tmp}/gmon-0`).mode! & 0o7777, 0o700, what);
    Deno.removeSync(tmp, { recursive: true });
  }
  for (const home of [others, groupWritable, readOnly]) {
    assertEquals(list(home), [], `nothing written in ${home}`);
    Deno.removeSync(home, { recursive: true });
  }
});

/** Gives a symlink itself to the other user (Deno's chown follows links). */
function chownLink(path: string) {
  const r = new Deno.Command("chown", { args: ["-h", `${OTHER_UID}:${OTHER_UID}`, path] }).outputSync();
  assertEquals(r.code, 0, dec.decode(r.stderr));
}

Deno.test("onefile: a planted symlink or a directory others could change is refused: one line, status 1, nothing run", async () => {
  const { file } = await built;
  const theirs = tempDir(0o755);
  Deno.chownSync(theirs, OTHER_UID, OTHER_UID);
  const rootsPrivate = tempDir(0o700);
  const cases: [string, (tmp: string) => void][] = [
    ["their symlink to their directory", (t) => {
      Deno.symlinkSync(theirs, `${t}/gmon-0`);
      chownLink(`${t}/gmon-0`);
    }],
    ["their symlink to a private directory of root", (t) => {
      Deno.symlinkSync(rootsPrivate, `${t}/gmon-0`);
      chownLink(`${t}/gmon-0`);
    }],
    ["their directory", (t) => {
      Deno.mkdirSync(`${t}/gmon-0`);
      Deno.chownSync(`${t}/gmon-0`, OTHER_UID, OTHER_UID);
    }],
    ["root's directory anyone could write in", (t) => {
      Deno.mkdirSync(`${t}/gmon-0`);
      Deno.chmodSync(`${t}/gmon-0`, 0o777);
    }],
    ["a shared temp dir without the sticky bit", (t) => Deno.chmodSync(t, 0o777)],
    ["a dangling symlink", (t) => Deno.symlinkSync(`${t}/nowhere`, `${t}/gmon-0`)],
  ];
  for (const [what, plant] of cases) {
    const tmp = tempDir(0o1777);
    plant(tmp);
    const mark = `${tempDir()}/ran`;
    const r = await run(file, [], { env: { HOME: undefined, TMPDIR: tmp, FAKE_MARK: mark } });
    assertEquals(r.code, 1, what);
    assertEquals(r.stdout, "", what);
    assert(/^gmon: no private directory to unpack into: [^\n]*\n$/.test(r.stderr), `${what}: ${r.stderr}`);
    assert(!exists(mark), `${what}: ran`);
    assertEquals(list(theirs), [], what);
    assertEquals(list(rootsPrivate), [], what);
    assert(!exists(`${tmp}/nowhere`), what);
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("onefile: a file cut short anywhere fails in one line, status 1, running nothing", async () => {
  const { file, info } = await built;
  const bytes = Deno.readFileSync(file);
  // The shebang line and the size check are read before the check runs: a cut there is the kernel's or
  // /bin/sh's to report (exec fails, or a syntax error), still running nothing.
  const guardEnd = bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1) + 1;
  const cuts = new Set<number>();
  for (let i = 0; i <= guardEnd + 2; i++) cuts.add(i);
  for (const c of [info.offset - 1, info.offset, info.offset + 1, info.offset + 10, bytes.length - 1]) {
    cuts.add(c);
  }
  // And a spread over the whole file.
  for (let c = guardEnd; c < bytes.length; c += 1499) cuts.add(c);
  const home = tempDir();
  const dir = tempDir(0o755);
  const mark = `${home}/ran`;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    const cutFile = `${dir}/gmon`;
    Deno.writeFileSync(cutFile, bytes.subarray(0, cut), { mode: 0o755 });
    Deno.chmodSync(cutFile, 0o755);
    let r: Run | null = null;
    try {
      r = await run(cutFile, [], { env: { HOME: home, FAKE_MARK: mark } });
    } catch { /* exec refused it */ }
    assert(!exists(mark), `cut at ${cut}: ran`);
    assertEquals(list(home), [], `cut at ${cut}: unpacked`);
    if (cut >= guardEnd) {
      assertEquals(r?.code, 1, `cut at ${cut}`);
      assertEquals(
        r?.stderr,
        `gmon: ${cutFile} is damaged: ${cut} bytes, not ${bytes.length} (cut short in copying?): copy it again\n`,
      );
    }
  }
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("onefile: a changed byte in the payload fails its check, status 1, running nothing: first run and later ones", async () => {
  const { file, info } = await built;
  const bytes = Deno.readFileSync(file);
  const positions = [
    0,
    1,
    2,
    3,
    9,
    10,
    100,
    512,
    4096,
    50_000,
    100_000,
    info.payloadSize - 9,
    info.payloadSize - 1,
  ]
    .map((p) => info.offset + p);
  const dir = tempDir(0o755);
  const warm = tempDir();
  assertEquals((await run(file, [], { env: { HOME: warm } })).code, 0);
  for (const pos of positions) {
    for (const [first, home] of [[true, tempDir()], [false, warm]] as const) {
      const bad = bytes.slice();
      bad[pos] ^= 0x20;
      const badFile = `${dir}/gmon`;
      Deno.writeFileSync(badFile, bad, { mode: 0o755 });
      Deno.chmodSync(badFile, 0o755);
      const mark = `${dir}/ran`;
      const r = await run(badFile, [], { env: { HOME: home, FAKE_MARK: mark } });
      const check = first ? "SHA-256" : "CRC-32";
      assertEquals(r.code, 1, `byte ${pos}`);
      assertEquals(
        r.stderr,
        `gmon: ${badFile} is corrupted: its payload fails its ${check} check: copy it again\n`,
      );
      assert(!exists(mark), `byte ${pos}: ran`);
      assertEquals(list(`${home}/.cache/gmon`), first ? [] : [info.sha256], `byte ${pos}`);
      if (first) Deno.removeSync(home, { recursive: true });
    }
  }
  Deno.removeSync(dir, { recursive: true });
  Deno.removeSync(warm, { recursive: true });
});

Deno.test("onefile: bash as /bin/sh behaves the same", async () => {
  const { file, info } = await built;
  const home = tempDir();
  const r = await run(file, ["x"], { env: { HOME: home }, argv0: ["bash", file] });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(said(r.stdout).pid, r.pid);
  assertEquals(said(r.stdout).args.at(-1), "x");
  assertEquals(said(r.stdout).denoDir, `${home}/.cache/gmon/${info.sha256}/deno_dir`);
  const { r: fallback, tmp } = await inTmp(file, { HOME: undefined }, ["bash"]);
  assertEquals(said(fallback.stdout).denoDir, `${tmp}/gmon-0/${info.sha256}/deno_dir`, fallback.stderr);
  Deno.removeSync(tmp, { recursive: true });
  const bytes = Deno.readFileSync(file);
  bytes[info.offset + 1000] ^= 1;
  const bad = `${tempDir(0o755)}/gmon`;
  Deno.writeFileSync(bad, bytes);
  const c = await run(bad, [], { env: { HOME: home }, argv0: ["bash", bad] });
  assertEquals([c.code, c.stderr], [
    1,
    `gmon: ${bad} is corrupted: its payload fails its CRC-32 check: copy it again\n`,
  ]);
  Deno.removeSync(home, { recursive: true });
});
