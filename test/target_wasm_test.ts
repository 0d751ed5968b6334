/**
 * TargetImage (the Rust/WASM ELF+DWARF reader) against real Go builds of test/fixtures/symbols:
 * header facts, function offsets checked against `go tool nm`/`objdump`, refusal of files it
 * cannot handle, and symbolization frame-for-frame equal to runtime.CallersFrames.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildFixture, root } from "./harness.ts";
import { buildWith } from "./toolchains.ts";
import { type Frame, type SymbolSource, TargetImage } from "../src/target/wasm.ts";

const decoder = new TextDecoder();

function run(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = new Deno.Command(cmd, { args, env }).outputSync();
  assert(r.code === 0, `${cmd} ${args.join(" ")}: ${decoder.decode(r.stderr)}`);
  return decoder.decode(r.stdout);
}

function open(path: string): TargetImage {
  return TargetImage.open(Deno.readFileSync(path));
}

function openError(bytes: Uint8Array): string {
  try {
    TargetImage.open(bytes);
  } catch (e) {
    assert(e instanceof Error);
    return e.message;
  }
  throw new Error("open succeeded");
}

/** The entry address `go tool nm` gives for `name`. */
function nmAddr(bin: string, name: string): number {
  for (const line of run("go", ["tool", "nm", bin]).split("\n")) {
    const [addr, kind, sym] = line.trim().split(/\s+/);
    if (sym === name && kind === "T") return parseInt(addr, 16);
  }
  throw new Error(`${name} not in nm output`);
}

/** Machine code bytes of the first instruction of `name`, from `go tool objdump`. */
function firstInstruction(bin: string, addr: number, name: string): Uint8Array {
  const re = `^${name.replaceAll(".", "\\.")}$`;
  const out = run("go", ["tool", "objdump", "-s", re, bin]);
  const m = out.match(new RegExp(`\t0x${addr.toString(16)}\t+([0-9a-f]+)\t`));
  assert(m, `no objdump line for ${name} at 0x${addr.toString(16)}`);
  return Uint8Array.from(m[1].match(/../g)!.map((b) => parseInt(b, 16)));
}

Deno.test("info() reports the facts of a Go build", () => {
  const bin = buildFixture("symbols");
  const info = open(bin).info();
  const goVersion = run("go", ["env", "GOVERSION"]).trim();
  assertEquals(info.arch, "x86_64");
  assertEquals(info.pie, false);
  assertEquals(info.goVersion, goVersion);
  assertEquals(info.hasDwarf, true);
  assertEquals(info.hasSymtab, true);
  if (/^go1\.26(\.|$)/.test(goVersion)) assertEquals(info.goidOffset, 152);
  else assert(info.goidOffset !== null && info.goidOffset > 0);
  assert(info.segments.length >= 2);
  assert(info.segments.some((s) => (s.flags & 1) !== 0), "an executable segment");
});

Deno.test("info() of a PIE and of a stripped build", () => {
  const pie = open(buildFixture("symbols", ["-buildmode=pie"])).info();
  assertEquals(pie.pie, true);
  assertEquals(pie.goidOffset, open(buildFixture("symbols")).info().goidOffset);
  const stripped = open(buildFixture("symbols", ["-ldflags=-s -w"])).info();
  assertEquals(stripped.hasDwarf, false);
  assertEquals(stripped.hasSymtab, false);
  assertEquals(stripped.goidOffset, null);
  assertEquals(stripped.goVersion, run("go", ["env", "GOVERSION"]).trim());
});

Deno.test("func() gives uprobe file offsets that nm and objdump agree with", () => {
  const bin = buildFixture("symbols");
  const elf = Deno.readFileSync(bin);
  const image = TargetImage.open(elf);
  const { segments } = image.info();
  for (const name of ["runtime.newproc1", "runtime.goexit1", "main.outer"]) {
    const f = image.func(name);
    assertEquals(f.name, name);
    assertEquals(f.addr, nmAddr(bin, name));
    assert(f.size > 0);
    const seg = segments.find((s) => f.addr >= s.vaddr && f.addr < s.vaddr + s.filesz);
    assert(seg, `${name} in a PT_LOAD segment`);
    assertEquals(f.offset, f.addr - seg.vaddr + seg.offset);
    const insn = firstInstruction(bin, f.addr, name);
    assertEquals(elf.subarray(f.offset, f.offset + insn.length), insn, `code of ${name} at its offset`);
  }
  let message = "";
  try {
    image.func("runtime.noSuchFunction");
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(message, "function runtime.noSuchFunction not found");
});

Deno.test("open() refuses what it cannot inspect, with distinct messages", () => {
  assertEquals(openError(new TextEncoder().encode("#!/bin/sh\necho hi\n")), "not an ELF file");
  assertEquals(openError(new Uint8Array()), "not an ELF file");
  const elf = Deno.readFileSync(buildFixture("symbols"));
  for (const cut of [20, 64, 4096, elf.length >> 1]) {
    const msg = openError(elf.subarray(0, cut));
    assert(msg.startsWith("truncated or malformed ELF"), `cut at ${cut}: ${msg}`);
  }
  const arm = Deno.readFileSync(buildFixture("symbols", [], { GOARCH: "arm64" }));
  assertEquals(openError(arm), "ELF for aarch64, not x86-64");
  assert(openError(Deno.readFileSync("/bin/true")).startsWith("not a Go program"));
});

interface GoFrame {
  pc: number;
  function: string;
  file: string;
  line: number;
  inlined: boolean;
}

/** The symbols fixture's output: its stacks and main.outer's run-time address. */
interface SymbolsOutput {
  outer: number;
  stacks: GoFrame[][];
}

/**
 * Symbolizes every stack the fixture printed with `image` and asserts that the frames are
 * runtime.CallersFrames's; returns how many inlined frames were compared.
 */
function assertAgrees(image: TargetImage, out: SymbolsOutput, what: string): number {
  const bias = out.outer - image.func("main.outer").addr;
  let inlinedSeen = 0;
  for (const stack of out.stacks) {
    // runtime.Callers lists one pc per logical frame; a physical frame is its run of inlined
    // frames closed by the non-inlined one, and the run's first pc is the real return address.
    const groups: GoFrame[][] = [];
    let run: GoFrame[] = [];
    for (const f of stack) {
      run.push(f);
      if (!f.inlined) {
        groups.push(run);
        run = [];
      }
    }
    assertEquals(run, [], "stack ends in a physical frame");
    const got = image.symbolize(groups.map((g) => g[0].pc - 1 - bias));
    groups.forEach((group, i) => {
      const want: Frame[] = group.map((f) => ({ func: f.function, file: f.file, line: f.line }));
      assertEquals(got[i], want, `${what}: frames at pc ${group[0].pc.toString(16)}`);
      inlinedSeen += group.length - 1;
    });
  }
  assert(inlinedSeen >= 6, `${what}: the fixture's helpers were inlined (${inlinedSeen} inlined frames)`);
  const outer = out.stacks[0].slice(1, 4).map((f) => f.function);
  assertEquals(outer, ["main.inlinedLeaf", "main.inlinedMiddle", "main.outer"], what);
  return inlinedSeen;
}

/** Releases of the matrix: the machine's go, Debian's 1.19, the rest through GOTOOLCHAIN. */
const RELEASES = ["go", "go1.19", "go1.21", "go1.22", "go1.23", "go1.24", "go1.25", "go1.27"];

/** Build kinds of the matrix: flags and environment of `go build`. */
const KINDS: Record<string, { flags: string[]; env?: Record<string, string> }> = {
  default: { flags: [] },
  stripped: { flags: ["-ldflags=-s -w"] },
  pie: { flags: ["-buildmode=pie"] },
  "pie stripped": { flags: ["-buildmode=pie", "-ldflags=-s -w"] },
  "cgo (external link)": { flags: ["-ldflags=-linkmode=external"], env: { CGO_ENABLED: "1" } },
  "cgo pie stripped": {
    flags: ["-buildmode=pie", "-ldflags=-linkmode=external -s -w"],
    env: { CGO_ENABLED: "1" },
  },
};

/**
 * Text symbols `go tool nm` lists for `bin`: name -> address. Left out: names with an ABI wrapper
 * ("X" beside "X.abi0"), which .gopclntab lists twice under one name (func() picks the one that is
 * not a wrapper there, which for an assembly function is "X.abi0").
 */
function nmSymbols(bin: string): Map<string, number> {
  const out = new Map<string, number>();
  const dup = new Set<string>();
  for (const line of run("go", ["tool", "nm", bin]).split("\n")) {
    const [addr, kind, name] = line.trim().split(/\s+/);
    if ((kind !== "T" && kind !== "t") || name === undefined) continue;
    if (name.endsWith(".abi0")) {
      dup.add(name.slice(0, -".abi0".length));
      continue;
    }
    if (out.has(name)) dup.add(name);
    out.set(name, parseInt(addr, 16));
  }
  for (const name of dup) out.delete(name);
  return out;
}

/** func() from .gopclntab gives nm's address for every symbol it finds. */
function assertFuncsAgree(image: TargetImage, syms: Map<string, number>, what: string) {
  let found = 0;
  for (const [name, addr] of syms) {
    let f;
    try {
      f = image.func(name);
    } catch {
      continue; // linker symbols without a function (runtime.text, go:buildid, ...)
    }
    assertEquals(f.addr, addr, `${what}: ${name}`);
    found++;
  }
  return { found, total: syms.size };
}

/** A copy of `elf` whose header says it has no section headers. */
function withoutSectionHeaders(elf: Uint8Array): Uint8Array {
  const bare = elf.slice();
  const v = new DataView(bare.buffer);
  v.setBigUint64(40, 0n, true); // e_shoff
  v.setUint16(60, 0, true); // e_shnum
  v.setUint16(62, 0, true); // e_shstrndx
  return bare;
}

/**
 * The autogenerated wrapper main.(*valuer).frames, which runtime.Callers leaves out of the
 * fixture's stacks, is marked as a wrapper by every source, at `<autogenerated>:1` as the runtime
 * would say.
 */
function assertWrapperMarked(elf: Uint8Array, sources: readonly SymbolSource[], what: string) {
  for (const source of ["auto", ...sources] as const) {
    const image = TargetImage.open(elf, { source });
    const w = image.func("main.(*valuer).frames");
    const frames = image.symbolize([w.addr + 1])[0];
    const want: Frame = { func: "main.(*valuer).frames", file: "<autogenerated>", line: 1, wrapper: true };
    // DWARF of Go 1.22+ has no lines for wrappers: "auto" takes them from .gopclntab.
    if (source === "dwarf") Object.assign(want, { file: frames.at(-1)?.file, line: frames.at(-1)?.line });
    assertEquals(frames.at(-1), want, `${what} via ${source}: the wrapper frame`);
  }
}

/** The unstripped kind each stripped kind is checked against. */
const STRIPPED_FROM: Record<string, string> = { stripped: "default", "pie stripped": "pie" };

const PROBED = ["runtime.newproc1", "runtime.newproc", "runtime.goexit1", "runtime.goexit0", "main.outer"];

/** The functions gmon probes are at the same entry and file offset in a stripped build. */
function assertStrippedFuncs(unstripped: TargetImage, stripped: TargetImage, what: string) {
  for (const name of PROBED) {
    let want;
    try {
      want = unstripped.func(name);
    } catch {
      continue; // not in this release (goexit0 went away in 1.22)
    }
    const got = stripped.func(name);
    assertEquals([got.addr, got.offset], [want.addr, want.offset], `${what}: ${name}`);
  }
}

Deno.test("symbolize() matches runtime.CallersFrames on DWARF and pclntab, every release and build kind", async (t) => {
  const fixture = `${root}/test/fixtures/symbols`;

  for (const release of RELEASES) {
    await t.step(release, () => {
      const images = new Map<string, TargetImage>();
      for (const [kind, { flags, env }] of Object.entries(KINDS)) {
        const built = buildWith(release, fixture, flags, env);
        if ("skip" in built) {
          console.log(`  skipped ${release} ${kind}: ${built.skip}`);
          continue;
        }
        const out = JSON.parse(run(built.path, [])) as SymbolsOutput;
        const elf = Deno.readFileSync(built.path);
        if (kind === "default") {
          // Every function of the symbol table, found in .gopclntab alone at the same entry.
          const pcln = TargetImage.open(elf, { source: "pclntab" });
          const { found, total } = assertFuncsAgree(pcln, nmSymbols(built.path), `${release} ${kind}`);
          assert(found > 0.9 * total, `${release}: .gopclntab has ${found} of ${total} text symbols`);
          console.log(
            `  ok ${release} ${kind}: func() from .gopclntab = nm for ${found} of ${total} text symbols`,
          );
        }
        images.set(kind, TargetImage.open(elf));
        const unstripped = images.get(STRIPPED_FROM[kind]);
        if (unstripped) {
          // Stripping moves no code: the stripped build's functions are where the unstripped one's are.
          assertStrippedFuncs(unstripped, images.get(kind)!, kind);
        }
        const auto = TargetImage.open(elf);
        const info = auto.info();
        assert(info.hasPclntab, `${release} ${kind}: has .gopclntab`);
        const sources = info.hasDwarf ? ["dwarf", "pclntab"] as const : ["pclntab"] as const;
        for (const source of sources) {
          assertAgrees(TargetImage.open(elf, { source }), out, `${release} ${kind} via ${source}`);
        }
        assertAgrees(auto, out, `${release} ${kind} via auto`);
        assertWrapperMarked(elf, sources, `${release} ${kind}`);
        if (kind.endsWith("stripped")) {
          // As sstrip leaves it: no section headers, so .gopclntab is found by scanning.
          const bare = withoutSectionHeaders(elf);
          const image = TargetImage.open(bare);
          assert(image.info().hasPclntab, `${release} ${kind} without section headers: has .gopclntab`);
          assertAgrees(image, out, `${release} ${kind} without section headers`);
          assertStrippedFuncs(images.get(kind)!, image, `${kind} without section headers`);
        }
        const bare = kind.endsWith("stripped") ? ", also without section headers" : "";
        console.log(
          `  ok ${info.goVersion} ${kind}: ${sources.join(" and ")} agree with CallersFrames${bare}`,
        );
      }
    });
  }
});

Deno.test("symbolize() edge cases: unknown pcs, empty input, scratch reuse, no DWARF", () => {
  const image = open(buildFixture("symbols"));
  assertEquals(image.symbolize([]), []);
  assertEquals(image.symbolize([0, 2 ** 52]), [[{ func: "?", file: "?", line: 0 }], [{
    func: "?",
    file: "?",
    line: 0,
  }]]);
  const entry = image.func("main.outer").addr;
  const many = image.symbolize(Array.from({ length: 1000 }, () => entry));
  assertEquals(many.length, 1000);
  assert(many.every((frames) => frames[0].func === "main.outer" && frames[0].line > 0));

  // Without DWARF, .gopclntab answers; forced to DWARF, only the symbol table's name is left.
  const bin = buildFixture("symbols", ["-ldflags=-w"]);
  const noDwarf = open(bin);
  const f = noDwarf.func("main.outer");
  const [[frame]] = noDwarf.symbolize([f.addr + 1]);
  assertEquals(frame.func, "main.outer");
  assert(frame.file.endsWith("/test/fixtures/symbols/main.go") && frame.line > 0, JSON.stringify(frame));
  const dwarfOnly = TargetImage.open(Deno.readFileSync(bin), { source: "dwarf" });
  assertEquals(dwarfOnly.symbolize([f.addr + 1]), [[{ func: "main.outer", file: "?", line: 0 }]]);
});
