/**
 * TargetImage (the Rust/WASM ELF+DWARF reader) against real Go builds of test/fixtures/symbols:
 * header facts, function offsets checked against `go tool nm`/`objdump`, refusal of files it
 * cannot handle, and symbolization frame-for-frame equal to runtime.CallersFrames.
 */
import { assert, assertEquals } from "./assert.ts";
import { buildFixture } from "./harness.ts";
import { type Frame, TargetImage } from "../src/target/wasm.ts";

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

Deno.test("symbolize() matches runtime.CallersFrames, inlined frames included", () => {
  const bin = buildFixture("symbols");
  const stacks = JSON.parse(run(bin, [])) as GoFrame[][];
  const image = open(bin);
  let inlinedSeen = 0;
  for (const stack of stacks) {
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
    const got = image.symbolize(groups.map((g) => g[0].pc - 1));
    groups.forEach((group, i) => {
      const want: Frame[] = group.map((f) => ({ func: f.function, file: f.file, line: f.line }));
      assertEquals(got[i], want, `frames at pc ${group[0].pc.toString(16)}`);
      inlinedSeen += group.length - 1;
    });
  }
  assert(inlinedSeen >= 6, `the fixture's helpers were inlined (${inlinedSeen} inlined frames)`);
  const outer = stacks[0].slice(1, 4).map((f) => f.function);
  assertEquals(outer, ["main.inlinedLeaf", "main.inlinedMiddle", "main.outer"]);
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

  const noDwarf = open(buildFixture("symbols", ["-ldflags=-w"]));
  const f = noDwarf.func("main.outer");
  assertEquals(noDwarf.symbolize([f.addr + 1]), [[{ func: "main.outer", file: "?", line: 0 }]]);
});
