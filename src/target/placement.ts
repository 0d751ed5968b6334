/**
 * Where gmon's uprobes go. A uprobe on an instruction the kernel emulates (call, jmp, jcc, nop,
 * push) costs one trap; anywhere else the kernel also single-steps the instruction out of line,
 * which costs several times more. So each probe sits on an emulated instruction where the g it
 * reports is provably in a known register, found by decoding the function (iced-x86, in the WASM
 * module) — never at a guessed offset, since a probe inside an instruction corrupts the target. Where
 * no such spot is proven, the probe falls back to the old placement and `how` says why.
 *
 * - Creation: `runtime.newproc` queues every `go` statement's new g with
 *   `runqput(pp, newg, true)` from its closure `runtime.newproc.func1`; at that `call`, Go's register
 *   ABI puts newg (goid set) in rbx. newproc1's other callers (newcoro 1.22+, debugCallWrap's
 *   closure, synctest 1.25+) get a probe right after their `call runtime.newproc1`, where rax holds
 *   the new g. Fallback: a uretprobe on newproc1 (rax = new g), covering every caller.
 * - Exit: goexit1 runs on the exiting goroutine (r14 = g); its prologue's stack-check `jbe` (after
 *   `cmp rsp|r12, 0x10(r14)`) is emulated. Fallback: goexit1's entry.
 *
 * @example
 * ```ts
 * import { TargetImage } from "./wasm.ts";
 * import { creationProbes, exitProbe } from "./placement.ts";
 * const image = TargetImage.open(Deno.readFileSync("/srv/app/server"));
 * for (const p of [...creationProbes(image), exitProbe(image)]) console.log(p.what, p.offset, p.reg, p.how);
 * ```
 *
 * @module
 */
import type { CallSite, Disassembly, FunctionSymbol, Instruction } from "./wasm.ts";

/** The register a probe reads the g pointer from. */
export type GReg = "rax" | "rbx" | "r14";

/** One uprobe to attach. */
export interface Placement {
  /** The probed function, for messages: "runtime.newproc.func1". */
  what: string;
  /** Link-time address of the probed instruction (an instruction start, from the decoder). */
  addr: number;
  /** Its file offset, as uprobe attachment wants. */
  offset: number;
  retprobe: boolean;
  /** Where the g is when the probe fires. */
  reg: GReg;
  /** Why here, for the DEBUG log: "call runtime.runqput at runtime.newproc.func1+0x40 (emulated)". */
  how: string;
}

/** What the policy needs from the opened executable ({@link TargetImage} provides it). */
export interface CodeImage {
  func(name: string): FunctionSymbol;
  disasm(name: string): Disassembly;
  callers(callee: string, prefix: string): CallSite[];
}

const NEWPROC1 = "runtime.newproc1";
const RUNQPUT = "runtime.runqput";
const CLOSURE = "runtime.newproc.func1";
const GOEXIT1 = "runtime.goexit1";
/** newproc1 is unexported: only the runtime's own functions call it. */
const CALLER_PREFIX = "runtime.";

/**
 * Every probe needed to see every goroutine creation: the `call runtime.runqput` in
 * runtime.newproc.func1 (rbx) plus one after each other `call runtime.newproc1` (rax); or, when
 * any of that cannot be proven, the single uretprobe on runtime.newproc1 (rax).
 *
 * @throws Error when runtime.newproc1 itself is missing (nothing to probe at all).
 */
export function creationProbes(image: CodeImage): Placement[] {
  const newproc1 = image.func(NEWPROC1);
  try {
    const site = runqputSite(image, newproc1);
    const others = image.callers(NEWPROC1, CALLER_PREFIX).filter((c) => c.func !== CLOSURE);
    return [site, ...others.map((c) => afterCall(image, c))];
  } catch (e) {
    return [{
      what: NEWPROC1,
      addr: newproc1.addr,
      offset: newproc1.offset,
      retprobe: true,
      reg: "rax",
      how: `entry+uretprobe (fallback: ${(e as Error).message})`,
    }];
  }
}

/**
 * An exit probe on `name`, a function that runs on the exiting goroutine (goexit1; coroexit for
 * coroutines, which never reach goexit1): its prologue stack-check jcc (r14), else its entry (r14).
 *
 * @throws Error when the function is missing.
 */
export function exitProbe(image: CodeImage, name: string = GOEXIT1): Placement {
  const entry = image.func(name);
  let d: Disassembly;
  try {
    d = image.disasm(name);
  } catch (e) {
    return exitFallback(entry, `cannot decode ${name}: ${(e as Error).message}`);
  }
  const found = stackCheckJcc(d.insns);
  if (typeof found === "string") return exitFallback(entry, found);
  return {
    what: name,
    addr: found.addr,
    offset: fileOffset(d, found.addr),
    retprobe: false,
    reg: "r14",
    how: `${mnemonic(found)} at ${where(d, found.addr)} (prologue stack check, emulated)`,
  };
}

function exitFallback(entry: FunctionSymbol, why: string): Placement {
  return {
    what: entry.name,
    addr: entry.addr,
    offset: entry.offset,
    retprobe: false,
    reg: "r14",
    how: `entry (fallback: ${why})`,
  };
}

/** `cmp rsp|r12,[r14+0x10]`: the stack-bound check of a Go prologue (stackguard0 is at 0x10). */
const STACK_CMP = /^cmp (rsp|r12),\[r14\+0x10\]$/;
/** An instruction whose first (destination) operand is r14 or a part of it. */
const WRITES_R14 = /^(?!cmp |test |push )\S+ r14[dwb]?(,|$)/;
/** A Go prologue is at most 5 instructions up to its last jcc (the large-frame form). */
const PROLOGUE_MAX = 5;

/** The jcc right after the prologue's stack check, or why there is none. */
function stackCheckJcc(insns: Instruction[]): Instruction | string {
  for (let i = 0; i < Math.min(insns.length, PROLOGUE_MAX); i++) {
    const ins = insns[i];
    if (WRITES_R14.test(ins.text)) return `r14 is written before the stack check (${ins.text})`;
    if (ins.kind === "call" || ins.kind === "jmp") break;
    if (ins.kind !== "jcc" || i === 0 || !STACK_CMP.test(insns[i - 1].text)) continue;
    if (!ins.emulated) return `the stack check's ${ins.text} is not emulated`;
    return ins;
  }
  return "no prologue stack check (cmp 0x10(r14); jcc) at its start (NOSPLIT?)";
}

/** The `call runtime.runqput` in runtime.newproc.func1, proven to follow its `call runtime.newproc1`. */
function runqputSite(image: CodeImage, newproc1: FunctionSymbol): Placement {
  const d = image.disasm(CLOSURE);
  const runqput = image.func(RUNQPUT);
  const toNewproc1 = d.insns.filter((i) => i.kind === "call" && i.target === newproc1.addr);
  const toRunqput = d.insns.filter((i) => i.kind === "call" && i.target === runqput.addr);
  if (toNewproc1.length !== 1 || toRunqput.length !== 1) {
    throw new Error(
      `${CLOSURE} has ${toNewproc1.length} calls to ${NEWPROC1} and ${toRunqput.length} to ${RUNQPUT}, ` +
        `not one each`,
    );
  }
  const call = toRunqput[0];
  if (call.addr < toNewproc1[0].addr) throw new Error(`${CLOSURE} calls ${RUNQPUT} before ${NEWPROC1}`);
  if (!call.emulated) throw new Error(`the call to ${RUNQPUT} in ${CLOSURE} is not emulated (${call.text})`);
  return {
    what: CLOSURE,
    addr: call.addr,
    offset: fileOffset(d, call.addr),
    retprobe: false,
    reg: "rbx",
    how: `call ${RUNQPUT} at ${where(d, call.addr)} (emulated)`,
  };
}

/** A probe on the instruction right after one `call runtime.newproc1` (rax = the new g). */
function afterCall(image: CodeImage, site: CallSite): Placement {
  const d = image.disasm(site.func);
  const i = d.insns.findIndex((ins) => ins.addr === site.addr);
  const next = d.insns[i + 1];
  if (i < 0 || next === undefined || next.addr !== site.addr + site.len) {
    throw new Error(`no instruction after the call to ${NEWPROC1} at ${where(d, site.addr)}`);
  }
  // Reached only from that call, or rax would not be the new g on every path.
  const jumper = d.insns.find((ins) => ins.target === next.addr);
  if (jumper !== undefined) {
    throw new Error(`${where(d, next.addr)}, after a call to ${NEWPROC1}, is also a branch target`);
  }
  return {
    what: site.func,
    addr: next.addr,
    offset: fileOffset(d, next.addr),
    retprobe: false,
    reg: "rax",
    how:
      `after call ${NEWPROC1} at ${where(d, next.addr)} (${next.emulated ? "emulated" : "single-stepped"}: ` +
      `${next.text})`,
  };
}

function fileOffset(d: Disassembly, addr: number): number {
  if (!d.insns.some((i) => i.addr === addr)) {
    throw new Error(`${where(d, addr)} is not an instruction start`);
  }
  return d.offset + (addr - d.addr);
}

function where(d: Disassembly, addr: number): string {
  return `${d.name}+0x${(addr - d.addr).toString(16)}`;
}

function mnemonic(i: Instruction): string {
  return i.text.split(" ", 1)[0];
}
