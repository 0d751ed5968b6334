/**
 * Probe placement (src/target/placement.ts over the WASM decoder) on real builds of every Go release
 * of the matrix (test/toolchains.ts), each as a default build, `-ldflags=-w`, `-buildmode=pie` and
 * stripped (`-s -w`, functions from .gopclntab): the creation probe is the `call runtime.runqput` in
 * runtime.newproc.func1 (rbx), the exit probe the emulated stack-check jcc of runtime.goexit1 (r14),
 * every other caller of newproc1 (debugCallWrap; newcoro via iter.Pull, 1.23+; synctest via
 * `go test -c`, 1.25+) gets a probe right after its call (rax), and every listing, address and byte
 * agrees with the release's own `go tool objdump`. Plus the fallbacks, on hand-made listings.
 */
import { assert, assertEquals } from "./assert.ts";
import { root } from "./harness.ts";
import { buildWith, goFor } from "./toolchains.ts";
import { type CodeImage, creationProbes, exitProbe, type Placement } from "../src/target/placement.ts";
import { type Disassembly, type Instruction, TargetImage } from "../src/target/wasm.ts";

const decoder = new TextDecoder();

/** The matrix: the machine's go, Debian's 1.19, and releases fetched through GOTOOLCHAIN. */
const RELEASES = [
  "machine",
  "go1.19",
  "go1.21.13",
  "go1.22.12",
  "go1.23.12",
  "go1.24.13",
  "go1.25.14",
  "go1.27.4",
];

/** One toolchain of the matrix, resolved. */
interface Release {
  name: string;
  /** Its go binary (from test/toolchains.ts), run with GOTOOLCHAIN=local. */
  go: string;
  version: string;
  /** iter.Pull (runtime.newcoro) exists from 1.23. */
  coro: boolean;
  /** testing/synctest.Test (runtime.synctestRun) exists from 1.25. */
  synctest: boolean;
}

const BUILDS: { name: string; flags: string[] }[] = [
  { name: "default", flags: [] },
  { name: "-ldflags=-w", flags: ["-ldflags=-w"] },
  { name: "pie", flags: ["-buildmode=pie"] },
];

const DEBUGCALL = "runtime.debugCallWrap";
const fixture = (name: string) => `${root}/test/fixtures/${name}`;

function go(bin: string, args: string[], cwd?: string): { ok: boolean; out: string; err: string } {
  const r = new Deno.Command(bin, {
    args,
    cwd,
    env: { GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  return { ok: r.code === 0, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

/** The release's toolchain, or null after printing why it is skipped. */
function resolve(name: string): Release | null {
  const bin = goFor(name);
  const version = bin === null ? "" : go(bin, ["env", "GOVERSION"]).out.trim();
  const minor = Number(version.match(/^go1\.(\d+)/)?.[1]);
  if (bin === null || !minor) {
    console.log(`placement: skip ${name}: toolchain not available`);
    return null;
  }
  return { name, go: bin, version, coro: minor >= 23, synctest: minor >= 25 };
}

/** Builds test/fixtures/NAME's tests with `go test -c` into a temp dir; returns the binary. */
function buildTest(release: Release, name: string): string {
  const out = `${Deno.makeTempDirSync({ prefix: `gmon-${name}-` })}/${name}.test`;
  const r = go(release.go, ["test", "-c", "-o", out, "."], fixture(name));
  assert(r.ok, `${release.version} go test -c ${name}: ${r.err}`);
  return out;
}

/** `go tool objdump` of one function: address -> [hex bytes, assembly]. */
function objdump(release: Release, bin: string, func: string): Map<number, [string, string]> {
  const re = `^${func.replaceAll(".", "\\.")}$`;
  const r = go(release.go, ["tool", "objdump", "-s", re, bin]);
  assert(r.ok, `objdump ${func}: ${r.err}`);
  const lines = new Map<number, [string, string]>();
  for (const line of r.out.split("\n")) {
    const m = line.match(/\t0x([0-9a-f]+)\t+([0-9a-f]+)\t+(.*?)\s*$/);
    if (m) lines.set(parseInt(m[1], 16), [m[2], m[3]]);
  }
  assert(lines.size > 0, `objdump listed nothing for ${func}`);
  return lines;
}

/** Our instruction boundaries and bytes equal objdump's, instruction for instruction. */
function sameListing(d: Disassembly, dump: Map<number, [string, string]>, elf: Uint8Array): void {
  assert(d.complete, `${d.name}: decoding stopped early`);
  assertEquals(d.insns.map((i) => i.addr), [...dump.keys()], `${d.name}: instruction starts`);
  for (const i of d.insns) {
    const off = d.offset + (i.addr - d.addr);
    const hex = [...elf.subarray(off, off + i.len)].map((b) => b.toString(16).padStart(2, "0")).join("");
    assertEquals(hex, dump.get(i.addr)![0], `${d.name}+0x${(i.addr - d.addr).toString(16)}: bytes`);
  }
}

function insnAt(d: Disassembly, addr: number): Instruction {
  const i = d.insns.find((x) => x.addr === addr);
  assert(i, `${d.name}: no instruction starts at 0x${addr.toString(16)}`);
  return i;
}

/** Checks one build's placements against objdump; returns the table row. */
function check(release: Release, build: string, bin: string, callers: string[]): string {
  const elf = Deno.readFileSync(bin);
  const image = TargetImage.open(elf);
  const creations = creationProbes(image);
  const exit = exitProbe(image);
  const label = `${release.name} ${build}`;

  // Creation: the runqput call, rbx, at an objdump instruction boundary.
  const first = creations[0];
  assertEquals([first.what, first.reg, first.retprobe], ["runtime.newproc.func1", "rbx", false], label);
  const closure = image.disasm("runtime.newproc.func1");
  const closureDump = objdump(release, bin, "runtime.newproc.func1");
  sameListing(closure, closureDump, elf);
  const call = insnAt(closure, first.addr);
  assertEquals(
    [call.kind, call.target, call.emulated],
    ["call", image.func("runtime.runqput").addr, true],
    label,
  );
  assert(
    /^CALL runtime\.runqput\(SB\)$/.test(closureDump.get(first.addr)![1]),
    `${label}: objdump has no CALL runtime.runqput at the creation probe`,
  );
  assertEquals(elf[first.offset], 0xe8, `${label}: file offset of the creation probe`);

  // Every other caller of newproc1: the instruction right after the call, rax.
  for (const p of creations.slice(1)) {
    assertEquals([p.reg, p.retprobe], ["rax", false], `${label} ${p.what}`);
    const dump = objdump(release, bin, p.what);
    const d = image.disasm(p.what);
    sameListing(d, dump, elf);
    const starts = [...dump.keys()];
    const k = starts.indexOf(p.addr);
    assert(k > 0, `${label}: ${p.what} probe not at an objdump instruction start`);
    assertEquals(dump.get(starts[k - 1])![1], "CALL runtime.newproc1(SB)", `${label} ${p.what}`);
    assertEquals(p.offset, d.offset + (p.addr - d.addr));
  }
  const others = creations.slice(1).map((p) => p.what);
  for (const c of callers) assert(others.some((w) => w.startsWith(c)), `${label}: ${c}'s call missed`);

  // Exit: goexit1's prologue jcc, emulated, right after objdump's CMPQ SP|R12, 0x10(R14).
  assertEquals([exit.what, exit.reg, exit.retprobe], ["runtime.goexit1", "r14", false], label);
  const goexit1 = image.disasm("runtime.goexit1");
  const dump = objdump(release, bin, "runtime.goexit1");
  sameListing(goexit1, dump, elf);
  const jcc = insnAt(goexit1, exit.addr);
  assertEquals([jcc.kind, jcc.emulated], ["jcc", true], label);
  const starts = [...dump.keys()];
  const k = starts.indexOf(exit.addr);
  assert(
    k > 0 && /^J[A-Z]+ /.test(dump.get(exit.addr)![1]),
    `${label}: objdump has no jump at the exit probe`,
  );
  // objdump before 1.21 prints the operands the other way round
  const cmp = dump.get(starts[k - 1])![1];
  assert(/^CMPQ ((SP|R12), 0x10\(R14\)|0x10\(R14\), (SP|R12))$/.test(cmp), `${label}: no stack check before`);
  assertEquals(exit.offset, goexit1.offset + (exit.addr - goexit1.addr));

  const hex = (p: Placement) => `0x${(p.addr - image.func(p.what).addr).toString(16)}`;
  return [
    label.padEnd(28),
    creations.map((p) => `${p.what}+${hex(p)}/${p.reg}`).join(" "),
    `| ${exit.what}+${hex(exit)}/${exit.reg}`,
  ].join(" ");
}

Deno.test("placements on every release and build kind agree with go tool objdump", () => {
  const rows: string[] = [];
  const hows = new Set<string>();
  const built = (release: Release, name: string, flags: string[]): string => {
    const r = buildWith(release.name, fixture(name), flags);
    if ("skip" in r) throw new Error(r.skip);
    return r.path;
  };
  for (const release of RELEASES.map(resolve).filter((r) => r !== null)) {
    const version = release.version;
    for (const build of BUILDS) {
      const spawner = built(release, "spawner", build.flags);
      rows.push(check(release, build.name, spawner, [DEBUGCALL]) + ` (${version})`);
      if (build.name === "-ldflags=-w") {
        // Stripped (-s -w): no .symtab for objdump, functions from .gopclntab; the code is the
        // -w build's, so the placements must be the same.
        const stripped = built(release, "spawner", ["-ldflags=-s -w"]);
        const image = TargetImage.open(Deno.readFileSync(stripped));
        const probes = (i: CodeImage) => [...creationProbes(i), exitProbe(i)];
        assertEquals(
          probes(image),
          probes(TargetImage.open(Deno.readFileSync(spawner))),
          `${release.name} stripped`,
        );
        rows.push(`${`${release.name} -s -w`.padEnd(28)} same as -ldflags=-w (${version})`);
      }
      if (release.coro) {
        const coro = built(release, "coro", build.flags);
        rows.push(
          check(release, `${build.name} coro`, coro, [DEBUGCALL, "runtime.newcoro"]) + ` (${version})`,
        );
        const image = TargetImage.open(Deno.readFileSync(coro));
        for (const p of [...creationProbes(image), exitProbe(image)]) {
          hows.add(p.how.replace(/0x[0-9a-f]+/g, "N"));
        }
      }
    }
    if (release.synctest) {
      const bin = buildTest(release, "synctest");
      rows.push(
        check(release, "test -c synctest", bin, [DEBUGCALL, "runtime.synctestRun"]) + ` (${version})`,
      );
    }
  }
  console.log("release build                creation probes (func+off/reg) | exit probe");
  for (const r of rows) console.log(r);
  console.log([...hows].map((h) => `  how: ${h}`).join("\n"));
  assert(rows.length > 0, "no toolchain available at all");
});

// Hand-made listings for the fallbacks.

function ins(
  addr: number,
  len: number,
  kind: Instruction["kind"],
  text: string,
  target: number | null = null,
) {
  return { addr, len, kind, text, target, emulated: kind !== "other" };
}

function fake(
  funcs: Record<string, Instruction[]>,
  calls: { func: string; addr: number; len: number }[] = [],
) {
  const entry = (name: string) => {
    const insns = funcs[name];
    if (!insns) throw new Error(`function ${name} not found`);
    const addr = insns[0].addr;
    const last = insns[insns.length - 1];
    return { name, addr, size: last.addr + last.len - addr, offset: addr - 0x400000 };
  };
  const image: CodeImage = {
    func: entry,
    disasm: (name) => ({ ...entry(name), complete: true, insns: funcs[name] }),
    callers: () => calls.map((c) => ({ ...c, funcAddr: entry(c.func).addr })),
  };
  return image;
}

const NEWPROC1 = [ins(0x1000, 4, "other", "cmp rsp,[r14+0x10]")];
const RUNQPUT = [ins(0x2000, 4, "other", "cmp rsp,[r14+0x10]")];
const CLOSURE = [
  ins(0x3000, 4, "other", "cmp rsp,[r14+0x10]"),
  ins(0x3004, 2, "jcc", "jbe 0x3020", 0x3020),
  ins(0x3006, 5, "call", "call 0x1000", 0x1000),
  ins(0x300b, 3, "other", "mov rbx,rax"),
  ins(0x300e, 5, "call", "call 0x2000", 0x2000),
];
const GOEXIT1 = [
  ins(0x4000, 5, "other", "lea r12,[rsp-0x88]"),
  ins(0x4005, 4, "other", "cmp r12,[r14+0x10]"),
  ins(0x4009, 2, "jcc", "jbe 0x4040", 0x4040),
];

Deno.test("creation: the runqput call, plus after each other newproc1 call", () => {
  const coro = [ins(0x5000, 5, "call", "call 0x1000", 0x1000), ins(0x5005, 3, "other", "mov rcx,rax")];
  const image = fake(
    {
      "runtime.newproc1": NEWPROC1,
      "runtime.runqput": RUNQPUT,
      "runtime.newproc.func1": CLOSURE,
      "runtime.newcoro.func1": coro,
    },
    [{ func: "runtime.newproc.func1", addr: 0x3006, len: 5 }, {
      func: "runtime.newcoro.func1",
      addr: 0x5000,
      len: 5,
    }],
  );
  assertEquals(creationProbes(image), [
    {
      what: "runtime.newproc.func1",
      addr: 0x300e,
      offset: 0x300e - 0x400000,
      retprobe: false,
      reg: "rbx",
      how: "call runtime.runqput at runtime.newproc.func1+0xe (emulated)",
    },
    {
      what: "runtime.newcoro.func1",
      addr: 0x5005,
      offset: 0x5005 - 0x400000,
      retprobe: false,
      reg: "rax",
      how: "after call runtime.newproc1 at runtime.newcoro.func1+0x5 (single-stepped: mov rcx,rax)",
    },
  ]);
});

Deno.test("creation falls back to the newproc1 uretprobe, saying why", () => {
  const fallback = (image: CodeImage) => {
    const p = creationProbes(image);
    assertEquals(p.length, 1);
    assertEquals([p[0].what, p[0].addr, p[0].retprobe, p[0].reg], ["runtime.newproc1", 0x1000, true, "rax"]);
    return p[0].how;
  };
  // no runqput call in the closure (an unknown release layout)
  let how = fallback(fake({
    "runtime.newproc1": NEWPROC1,
    "runtime.runqput": RUNQPUT,
    "runtime.newproc.func1": CLOSURE.slice(0, 4),
  }));
  assertEquals(
    how,
    "entry+uretprobe (fallback: runtime.newproc.func1 has 1 calls to runtime.newproc1 " +
      "and 0 to runtime.runqput, not one each)",
  );
  // no closure at all
  how = fallback(fake({ "runtime.newproc1": NEWPROC1, "runtime.runqput": RUNQPUT }));
  assertEquals(how, "entry+uretprobe (fallback: function runtime.newproc.func1 not found)");
  // another caller whose next instruction is also reached by a jump: rax is not proven there
  const loop = [
    ins(0x5000, 5, "call", "call 0x1000", 0x1000),
    ins(0x5005, 3, "other", "mov rcx,rax"),
    ins(0x5008, 2, "jmp", "jmp 0x5005", 0x5005),
  ];
  how = fallback(fake(
    {
      "runtime.newproc1": NEWPROC1,
      "runtime.runqput": RUNQPUT,
      "runtime.newproc.func1": CLOSURE,
      "runtime.synctestRun.func1": loop,
    },
    [{ func: "runtime.synctestRun.func1", addr: 0x5000, len: 5 }],
  ));
  assert(how.includes("is also a branch target"), how);
  // a caller whose call ends the listing
  how = fallback(fake(
    {
      "runtime.newproc1": NEWPROC1,
      "runtime.runqput": RUNQPUT,
      "runtime.newproc.func1": CLOSURE,
      "runtime.x": [ins(0x5000, 5, "call", "call 0x1000", 0x1000)],
    },
    [{ func: "runtime.x", addr: 0x5000, len: 5 }],
  ));
  assert(how.includes("no instruction after the call"), how);
});

Deno.test("exit: the stack-check jcc of any prologue form, else the entry", () => {
  const exit = exitProbe(fake({ "runtime.goexit1": GOEXIT1 }));
  assertEquals(exit, {
    what: "runtime.goexit1",
    addr: 0x4009,
    offset: 0x4009 - 0x400000,
    retprobe: false,
    reg: "r14",
    how: "jbe at runtime.goexit1+0x9 (prologue stack check, emulated)",
  });
  // large frame: the first jcc (jb, after sub) is not the check; the jbe after the cmp is
  const large = [
    ins(0x4000, 3, "other", "mov r12,rsp"),
    ins(0x4003, 7, "other", "sub r12,0x2000"),
    ins(0x400a, 6, "jcc", "jb 0x4080", 0x4080),
    ins(0x4010, 4, "other", "cmp r12,[r14+0x10]"),
    ins(0x4014, 6, "jcc", "jbe 0x4080", 0x4080),
  ];
  assertEquals(exitProbe(fake({ "runtime.goexit1": large })).addr, 0x4014);
  const entry = (insns: Instruction[]) => {
    const p = exitProbe(fake({ "runtime.goexit1": insns }));
    assertEquals([p.addr, p.retprobe, p.reg], [0x4000, false, "r14"]);
    return p.how;
  };
  // NOSPLIT: no prologue
  assertEquals(
    entry([ins(0x4000, 1, "push", "push rbp"), ins(0x4001, 5, "call", "call 0x9000", 0x9000)]),
    "entry (fallback: no prologue stack check (cmp 0x10(r14); jcc) at its start (NOSPLIT?))",
  );
  // a jcc not preceded by the check
  assert(
    entry([ins(0x4000, 3, "other", "test eax,eax"), ins(0x4003, 2, "jcc", "je 0x4010", 0x4010)])
      .startsWith("entry (fallback: no prologue stack check"),
  );
  // r14 overwritten first
  assertEquals(
    entry([ins(0x4000, 3, "other", "mov r14,rax"), ...GOEXIT1.slice(1)]),
    "entry (fallback: r14 is written before the stack check (mov r14,rax))",
  );
  // a single-stepped jcc (e.g. with a prefix the kernel refuses) is not taken
  assertEquals(
    entry([GOEXIT1[0], GOEXIT1[1], { ...GOEXIT1[2], emulated: false }]),
    "entry (fallback: the stack check's jbe 0x4040 is not emulated)",
  );
});
