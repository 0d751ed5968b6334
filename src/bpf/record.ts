/**
 * The TS mirror of bpf/gmon.h, the one record layout the BPF program writes. test/record_test.ts
 * compiles the header and checks these offsets against it.
 *
 * @module
 */

/** enum gmon_kind */
export const Kind = { Create: 1, Exit: 2, Exec: 3, Gone: 4 } as const;
/** enum gmon_flags, and where flags carry the writing probe's index (GMON_PROBE_MASK wide). */
export const Flags = { Truncated: 1, probeShift: 8, probeMask: 0xffff } as const;

/** The attach cookie's fields (GMON_COOKIE_*). */
export const Cookie = { goidMask: 0xffff, regShift: 16, framesShift: 28, probeShift: 36 } as const;

/** struct gmon_pidns: gmon's pid namespace, as the loader writes it into .rodata.pidns. */
export const PidnsLayout = { dev: 0, ino: 8, size: 16 } as const;

/** enum gmon_reg: the register a probe site holds the g in. */
export const Reg = { rax: 0, rbx: 1, r14: 2 } as const;

/** Byte offsets and sizes of struct gmon_record. */
export const Layout = {
  kind: 0,
  pid: 4,
  goid: 8,
  timeNs: 16,
  nframes: 24,
  flags: 28,
  frames: 32,
  headerSize: 32,
  maxFrames: 127,
  size: 32 + 127 * 8,
} as const;

/**
 * One decoded record. The decoder fills a caller-owned instance in place so that draining the ring
 * allocates nothing per event; frames stay in the ring and are read through {@link GoroutineRecord.frame}
 * or, as 32-bit words, from {@link GoroutineRecord.words}.
 */
export class GoroutineRecord {
  kind = 0;
  pid = 0;
  /** goids stay far below 2^53 (they count goroutines ever created), so a Number holds them. */
  goid = 0;
  /** CLOCK_MONOTONIC ns; past 2^53 (104 days of uptime) it loses ns precision, never ms. */
  timeNs = 0;
  nframes = 0;
  flags = 0;
  /** The buffer the record is in, as little-endian 32-bit words (records are 8-byte aligned). */
  words: Uint32Array = new Uint32Array(0);
  /** Where frames[0]'s low word is in {@link GoroutineRecord.words}. */
  framesWord = 0;
  /** The view `words` was made for. */
  view: DataView | null = null;

  /** The i-th user PC, innermost first. PCs of x86-64 user space fit in 47 bits. */
  frame(i: number): number {
    const w = this.framesWord + i * 2;
    return this.words[w] + this.words[w + 1] * 0x1_0000_0000;
  }
}

/**
 * Fills `out` from the record of `len` bytes at `at` in `view` (4-byte aligned: the ring's records
 * are). Returns an error text for a record that doesn't fit its own header (only a mismatched BPF
 * object could write one), else null.
 */
export function decodeRecord(view: DataView, at: number, len: number, out: GoroutineRecord): string | null {
  if (len < Layout.headerSize) return `record of ${len} bytes is shorter than its header`;
  // 32-bit words read faster than DataView calls; the ring's view stays the same, so this is rare.
  if (out.view !== view) {
    out.view = view;
    out.words = new Uint32Array(view.buffer, view.byteOffset, view.byteLength >>> 2);
  }
  const w = out.words;
  const i = at >>> 2;
  out.kind = w[i];
  out.pid = w[i + 1];
  out.goid = w[i + 2] + w[i + 3] * 0x1_0000_0000;
  out.timeNs = w[i + 4] + w[i + 5] * 0x1_0000_0000;
  out.nframes = w[i + 6];
  out.flags = w[i + 7];
  out.framesWord = i + Layout.frames / 4;
  if (out.kind < Kind.Create || out.kind > Kind.Gone) return `record of unknown kind ${out.kind}`;
  if (out.nframes > Layout.maxFrames || Layout.headerSize + out.nframes * 8 > len) {
    return `record claims ${out.nframes} frames in ${len} bytes`;
  }
  return null;
}
