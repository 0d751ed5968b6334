/**
 * `-version`, and the single file as users get it: with GMON_BIN naming a copy of dist/gmon
 * (scripts/test's second pass), it runs as the process it was started as, from a private copy under
 * HOME, and a damaged copy fails before running anything. test/onefile_test.ts tests the stub itself.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildFixture, Gmon, gmonBin, leftovers, root, runGmon } from "./harness.ts";
import { VERSION } from "../src/version.ts";

const dec = new TextDecoder();

/** The stub's numbers, when GMON_BIN is a self-extracting file; null otherwise. */
function stubFacts(): { offset: number; payloadSize: number; sha256: string } | null {
  if (Deno.env.get("GMON_BIN") === undefined) return null;
  const head = new Uint8Array(16384);
  using f = Deno.openSync(gmonBin);
  const text = dec.decode(head.subarray(0, f.readSync(head) ?? 0));
  if (!text.startsWith("#!/bin/sh\n")) return null;
  const num = (k: string) => /^(\w+)=(\w+)$/m.exec(text.slice(text.indexOf(`\n${k}=`) + 1))?.[2] ?? "";
  return { offset: Number(num("offset")), payloadSize: Number(num("payload_size")), sha256: num("sha256") };
}
const facts = stubFacts();

/** The commit scripts/stamp records, asked of git the same way. */
function commit(): string {
  const r = new Deno.Command("git", {
    args: ["-C", root, "describe", "--always", "--dirty=-dirty", "--abbrev=12", "--exclude=*"],
  }).outputSync();
  return r.code === 0 ? dec.decode(r.stdout).trim() : "unknown";
}

/** MAJOR.MINOR of the system's libbpf.so.1, from the name of the file it links to. */
function systemLibbpf(): string {
  const ldconfig = dec.decode(new Deno.Command("ldconfig", { args: ["-p"] }).outputSync().stdout);
  const path = /libbpf\.so\.1 \(libc6,x86-64\) => (\S+)/.exec(ldconfig)?.[1];
  assert(path !== undefined, "libbpf.so.1 installed");
  const m = /libbpf\.so\.(\d+)\.(\d+)/.exec(Deno.realPathSync(path));
  assert(m !== null, Deno.realPathSync(path));
  return `${m[1]}.${m[2]}`;
}

Deno.test("version: -version is one line: gmon's version and commit, Deno and V8, libbpf, the kernel", async () => {
  const r = await runGmon(["-version"]);
  assertEquals([r.code, r.stderr], [0, ""]);
  const kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
  assertEquals(
    r.stdout,
    `gmon ${VERSION} commit=${commit()} deno=${Deno.version.deno} v8=${Deno.version.v8} libbpf=${systemLibbpf()} ` +
      `kernel=${kernel}\n`,
  );
  // Where libbpf is missing, -version still answers: checking a host is what it is for.
  const none = await new Deno.Command(gmonBin, {
    args: ["-version"],
    env: { GMON_LIBBPF: "/nonexistent/libbpf.so.1" },
  }).output();
  assertEquals(none.code, 0);
  assert(dec.decode(none.stdout).includes(" libbpf=missing "), dec.decode(none.stdout));
});

Deno.test({
  name: "onefile: dist/gmon becomes the process it was started as, run from a private copy under HOME",
  ignore: Deno.env.get("GMON_BIN") === undefined,
  async fn() {
    const gmon = new Gmon(["-path", buildFixture("spawner")]);
    try {
      await gmon.attached();
      const exe = Deno.readLinkSync(`/proc/${gmon.child.pid}/exe`);
      if (facts === null) {
        assertEquals(exe, Deno.realPathSync(gmonBin), "deno compile's file runs as itself");
      } else {
        const base = `${Deno.env.get("HOME")}/.cache/gmon`;
        assertEquals(exe, `${base}/${facts.sha256}/deno`);
        for (const d of [base, `${base}/${facts.sha256}`]) {
          const st = Deno.lstatSync(d);
          assertEquals([st.isDirectory, st.uid, st.mode! & 0o7777], [true, 0, 0o700], d);
        }
      }
    } finally {
      assertEquals(await gmon.stop(), 0, gmon.stderr);
    }
    assertEquals(leftovers(), []);
  },
});

Deno.test({
  name: "onefile: dist/gmon cut short or with a changed byte fails in one line, status 1, before running",
  ignore: facts === null,
  async fn() {
    const { offset, payloadSize } = facts!;
    const bytes = Deno.readFileSync(gmonBin);
    const dir = Deno.makeTempDirSync();
    const copy = `${dir}/gmon`;
    const fresh = Deno.makeTempDirSync();
    const tryIt = async (content: Uint8Array, home: string) => {
      Deno.writeFileSync(copy, content, { mode: 0o755 });
      Deno.chmodSync(copy, 0o755);
      const r = await new Deno.Command(copy, { args: ["-version"], env: { HOME: home } }).output();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    };
    for (
      const cut of [
        1000,
        offset - 1,
        offset,
        offset + 1,
        offset + Math.floor(payloadSize / 2),
        bytes.length - 1,
      ]
    ) {
      const r = await tryIt(bytes.subarray(0, cut), fresh);
      assertEquals([r.code, r.stdout], [1, ""], `cut at ${cut}`);
      assertEquals(
        r.stderr,
        `gmon: ${copy} is damaged: ${cut} bytes, not ${bytes.length} (cut short in copying?): copy it again\n`,
      );
    }
    // A first run checks the payload's SHA-256 before unpacking; later runs its CRC-32.
    for (const at of [0, 1, 4096, Math.floor(payloadSize / 2), payloadSize - 1]) {
      const bad = bytes.slice();
      bad[offset + at] ^= 0x04;
      for (const [home, check] of [[fresh, "SHA-256"], [Deno.env.get("HOME")!, "CRC-32"]]) {
        const r = await tryIt(bad, home);
        assertEquals([r.code, r.stdout], [1, ""], `byte ${at}`);
        assertEquals(
          r.stderr,
          `gmon: ${copy} is corrupted: its payload fails its ${check} check: copy it again\n`,
        );
      }
    }
    assertEquals([...Deno.readDirSync(`${fresh}/.cache/gmon`)], [], "nothing unpacked");
    Deno.removeSync(dir, { recursive: true });
    Deno.removeSync(fresh, { recursive: true });
  },
});
