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

/** Reads `len` (<= 8) little-endian bytes at runtime address `addr`, or null when not in the copy. */
export type ReadBytes = (addr: number, len: number) => Uint8Array | null;

/** The text between a frame's parentheses, e.g. `0xc000012345, {0x1, 0x2}, ...`. */
export function formatArgs(facts: FrameFacts, argp: number, read: ReadBytes): string {
  const p = facts.args;
  if (p === null) return "";
  const startOffset = facts.liveStart ?? 0xff;
  const isLive = (off: number, slot: number): boolean => {
    if (facts.live.length === 0 || off < startOffset) return true;
    const bits = facts.live[slot >> 3] ?? 0;
    return (bits & (1 << (slot & 7))) !== 0;
  };
  let out = "";
  let start = true;
  let slot = 0;
  const comma = () => {
    if (!start) out += ", ";
  };
  for (let pi = 0; pi < p.length;) {
    const o = p[pi++];
    if (o === END_SEQ) break;
    if (o === START_AGG) {
      comma();
      out += "{";
      start = true;
      continue;
    }
    if (o === END_AGG) out += "}";
    else if (o === DOTDOTDOT) {
      comma();
      out += "...";
    } else if (o === OFFSET_TOO_LARGE) {
      comma();
      out += "_";
    } else {
      comma();
      const sz = p[pi++] ?? 8;
      out += hexOf(read(argp + o, Math.min(sz, 8)));
      if (!isLive(o, slot)) out += "?";
      if (o >= startOffset) slot++;
    }
    start = false;
  }
  return out;
}

/** Go's `hex` of a little-endian value: 0x and lowercase digits, no leading zeros. */
function hexOf(bytes: Uint8Array | null): string {
  if (bytes === null) return "0x0";
  let lo = 0;
  let hi = 0;
  for (let i = Math.min(bytes.length, 8) - 1; i >= 0; i--) {
    if (i >= 4) hi = hi * 256 + bytes[i];
    else lo = lo * 256 + bytes[i];
  }
  return hi === 0 ? "0x" + lo.toString(16) : "0x" + hi.toString(16) + lo.toString(16).padStart(8, "0");
}
