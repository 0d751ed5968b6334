/**
 * Which objects a program's global variables point at: its writable data and bss (the writable
 * PT_LOAD segment of the executable, read from the running process). A goroutine blocked on a channel
 * that a global holds is not leaked in Go's sense — any code may still reach the channel through that
 * global and end the wait (Go's leak detector counts globals among its GC roots, too).
 *
 * @module
 */
import type { Segment } from "../target/wasm.ts";
import type { ProcessMemory } from "./memory.ts";

/** Read globals this many bytes at a time. */
const CHUNK = 1 << 20;
const PF_W = 2;

/** The addresses of `wanted` that some 8-byte word of the process's globals holds. */
export function heldByGlobals(
  mem: ProcessMemory,
  segments: readonly Segment[],
  bias: number,
  wanted: ReadonlySet<number>,
): Set<number> {
  const found = new Set<number>();
  if (wanted.size === 0) return found;
  for (const seg of segments.filter((s) => (s.flags & PF_W) !== 0)) {
    const start = Math.ceil((seg.vaddr + bias) / 8) * 8;
    const end = seg.vaddr + bias + seg.memsz;
    for (let at = start; at < end; at += CHUNK) {
      const bytes = mem.read(at, Math.min(CHUNK, end - at) & ~7);
      if (bytes === null) continue;
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
      for (let i = 0; i + 1 < words.length; i += 2) {
        // Heap pointers are below 2^47: the high half decides cheaply before the lookup.
        const hi = words[i + 1];
        if (hi === 0 && words[i] === 0) continue;
        const v = hi * 0x1_0000_0000 + words[i];
        if (wanted.has(v)) found.add(v);
      }
    }
  }
  return found;
}
