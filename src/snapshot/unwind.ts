/**
 * Walks a parked goroutine's stack as Go's own traceback does (runtime/traceback.go's unwinder): from
 * the saved pc and sp (g.sched, or g.syscallpc/sp in a system call), each frame's size from the pcsp
 * table, the caller's return address just below the frame's top, until a TOPFRAME function
 * (runtime.goexit) or a frame that writes SP. The stack is a copy gmon read from the process; every
 * word read must come from inside it, and every return address must land in a function, or the copy
 * is not trusted (it changed while being read).
 *
 * @module
 */
import type { FrameFacts } from "../target/wasm.ts";

/** abi.FuncFlag bits. */
const FLAG_TOPFRAME = 1;
const FLAG_SPWRITE = 2;
/** Functions whose caller's pc is exact rather than a return address (injected calls). */
const INJECTED: ReadonlySet<string> = new Set([
  "runtime.sigpanic",
  "runtime.asyncPreempt",
  "runtime.debugCallV2",
]);
/** More frames than any real stack has: a walk this long is going in circles. */
const MAX_FRAMES = 100_000;

/**
 * A copy of a stack: `len` bytes at `off` in `view`, read from address `base` up; the stack ends at
 * `hi`. Many stacks share one view (one buffer per reading round).
 */
export interface StackCopy {
  base: number;
  view: DataView;
  off: number;
  len: number;
  hi: number;
}

/** One physical frame found by the walk. */
export interface PhysicalFrame {
  /** Its pc in the file (the load bias removed): a return address, or exact for the innermost. */
  pc: number;
  /** The pc to look lines and liveness up at: pc - 1 for a return address, as Go does. */
  symPc: number;
  facts: FrameFacts;
  /** The runtime address of the frame's arguments (Go's frame.argp). */
  argp: number;
}

/** Why a walk stopped short: the copy ends too soon (read more), or it holds something impossible. */
export type WalkProblem = { kind: "short"; need: number } | { kind: "torn"; why: string };

/** Frame facts by file address; null where no function covers the pc. */
export type FactsAt = (pc: number) => FrameFacts | null;

/** Where to start: the saved pc and sp (runtime addresses), and whether they are a system call's. */
export interface WalkStart {
  pc: number;
  sp: number;
  syscall: boolean;
}

/**
 * The frames of one walk, in arrays reused from walk to walk: walking a hundred thousand stacks makes
 * no object per frame (the caller keeps what it needs, once per distinct stack).
 */
export class Walk {
  /** Frames found by the last {@link Walk.run}. */
  n = 0;
  pc: Float64Array<ArrayBuffer> = new Float64Array(64);
  symPc: Float64Array<ArrayBuffer> = new Float64Array(64);
  argp: Float64Array<ArrayBuffer> = new Float64Array(64);
  facts: FrameFacts[] = [];

  /** The i-th frame as an object (for a stack kept, or one whose arguments are printed). */
  frame(i: number): PhysicalFrame {
    return { pc: this.pc[i], symPc: this.symPc[i], facts: this.facts[i], argp: this.argp[i] };
  }

  /** Walks `stack` from `start`; pcs become file addresses by subtracting `bias`. Null when whole. */
  run(stack: StackCopy, start: WalkStart, bias: number, factsAt: FactsAt): WalkProblem | null {
    this.n = 0;
    let { pc, sp } = start;
    if (pc === 0) {
      // Go: a zero saved pc means the pc is on top of the stack.
      const outside = outsideCopy(stack, sp);
      if (outside !== null) return outside;
      pc = wordIn(stack, sp);
      sp += 8;
    }
    let trap = false;
    for (let n = 0; n < MAX_FRAMES; n++) {
      const facts = factsAt(pc - bias);
      if (facts === null) {
        return n === 0 ? { kind: "torn", why: `unknown pc 0x${pc.toString(16)}` } : {
          kind: "torn",
          why: `return address 0x${pc.toString(16)} is in no function`,
        };
      }
      const filePc = pc - bias;
      // Go's unwinder ends, without this frame, at a function that has no pcsp table.
      if (facts.spdelta === null || facts.spdelta < 0) return null;
      const fp = sp + facts.spdelta + 8;
      this.#push(filePc, !trap && filePc > facts.entry ? filePc - 1 : filePc, fp, facts);
      let flag = facts.flag;
      if (n === 0 && start.syscall) flag &= ~FLAG_SPWRITE;
      if (flag & (FLAG_TOPFRAME | FLAG_SPWRITE)) return null;
      if (fp > stack.hi) return { kind: "torn", why: "a frame reaches past the stack's top" };
      const outside = outsideCopy(stack, fp - 8);
      if (outside !== null) return outside;
      const lr = wordIn(stack, fp - 8);
      if (lr === 0) return null;
      trap = INJECTED.has(facts.name);
      pc = lr;
      sp = fp;
    }
    return { kind: "torn", why: `more than ${MAX_FRAMES} frames` };
  }

  #push(pc: number, symPc: number, argp: number, facts: FrameFacts): void {
    const i = this.n++;
    if (i === this.pc.length) {
      this.pc = grow(this.pc);
      this.symPc = grow(this.symPc);
      this.argp = grow(this.argp);
    }
    this.pc[i] = pc;
    this.symPc[i] = symPc;
    this.argp[i] = argp;
    this.facts[i] = facts;
  }
}

function grow(a: Float64Array): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

/** Why the 8-byte word at runtime address `addr` is not in the copy, or null when it is. */
function outsideCopy(stack: StackCopy, addr: number): WalkProblem | null {
  const off = addr - stack.base;
  if (off < 0) return { kind: "torn", why: "a frame points below the saved stack pointer" };
  if (off + 8 <= stack.len) return null;
  return addr + 8 > stack.hi
    ? { kind: "torn", why: "a frame points past the stack's top" }
    : { kind: "short", need: addr + 8 - stack.base };
}

/** The 8-byte word at runtime address `addr` of the copy (see {@link outsideCopy}). */
function wordIn(stack: StackCopy, addr: number): number {
  const at = stack.off + addr - stack.base;
  return stack.view.getUint32(at + 4, true) * 0x1_0000_0000 + stack.view.getUint32(at, true);
}
