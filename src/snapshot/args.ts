/**
 * A frame's arguments as Go's traceback prints them (runtime.printArgs): the function's ArgInfo
 * funcdata says which words of the argument area to print and how they nest, ArgLiveInfo which
 * register-argument spill slots hold a live value (a dead one is printed with a trailing `?`).
 *
 * @module
 */
import type { FrameFacts } from "../target/wasm.ts";

// abi.TraceArgs* control bytes.
const END_SEQ = 0xff;
const START_AGG = 0xfe;
const END_AGG = 0xfd;
const DOTDOTDOT = 0xfc;
const OFFSET_TOO_LARGE = 0xfb;

/** Where the argument area was read: `len` bytes from runtime address `base` are at `off` in `view`. */
export interface ArgBytes {
  base: number;
  view: DataView;
  off: number;
  len: number;
}

/**
 * The text between a frame's parentheses, e.g. `0xc000012345, {0x1, 0x2}, ...`. Made of parts joined
 * once, and read straight from the copy: a dump formats millions of these, and a string built by
 * appending is a tree of pieces that outlives the call.
 */
export function formatArgs(facts: FrameFacts, argp: number, bytes: ArgBytes): string {
  const p = facts.args;
  if (p === null) return "";
  const startOffset = facts.liveStart ?? 0xff;
  const out = PARTS;
  out.length = 0;
  let start = true;
  let slot = 0;
  for (let pi = 0; pi < p.length;) {
    const o = p[pi++];
    if (o === END_SEQ) break;
    if (o !== END_AGG && !start) out.push(", ");
    if (o === START_AGG) {
      out.push("{");
      start = true;
      continue;
    }
    if (o === END_AGG) out.push("}");
    else if (o === DOTDOTDOT) out.push("...");
    else if (o === OFFSET_TOO_LARGE) out.push("_");
    else {
      const sz = p[pi++] ?? 8;
      out.push(hexAt(bytes, argp + o, Math.min(sz, 8)));
      if (!isLive(facts, startOffset, o, slot)) out.push("?");
      if (o >= startOffset) slot++;
    }
    start = false;
  }
  return out.join("");
}

/** The parts of the arguments being formatted: one array, emptied for each frame. */
const PARTS: string[] = [];

/** Whether the argument at offset `off` (register spill slot `slot`) holds a live value. */
function isLive(facts: FrameFacts, startOffset: number, off: number, slot: number): boolean {
  if (facts.live.length === 0 || off < startOffset) return true;
  const bits = facts.live[slot >> 3] ?? 0;
  return (bits & (1 << (slot & 7))) !== 0;
}

/**
 * Go's `hex` of the `len` (<= 8) little-endian bytes at runtime address `addr`: 0x and lowercase
 * digits, no leading zeros; 0x0 when they are not in the copy.
 */
function hexAt(bytes: ArgBytes, addr: number, len: number): string {
  const at = addr - bytes.base;
  if (at < 0 || at + len > bytes.len) return "0x0";
  let lo = 0;
  let hi = 0;
  for (let i = len - 1; i >= 0; i--) {
    const b = bytes.view.getUint8(bytes.off + at + i);
    if (i >= 4) hi = hi * 256 + b;
    else lo = lo * 256 + b;
  }
  return hi === 0 ? "0x" + lo.toString(16) : "0x" + hi.toString(16) + lo.toString(16).padStart(8, "0");
}
