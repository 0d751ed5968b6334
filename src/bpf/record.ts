/**
 * The TS mirror of bpf/gmon.h, the one record layout the BPF program writes. test/record_test.ts
 * compiles the header and checks these offsets against it.
 *
 * @module
 */

/** enum gmon_kind */
export const Kind = { Create: 1, Exit: 2 } as const;
/** enum gmon_flags, and where flags carry the writing probe's index. */
export const Flags = { Truncated: 1, probeShift: 8 } as const;

/** The attach cookie's fields (GMON_COOKIE_*). */
export const Cookie = { goidMask: 0xffff, regShift: 16, probeShift: 20, framesShift: 28 } as const;

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
 * allocates nothing per event; frames stay in the ring and are read through {@link GoroutineRecord.frame}.
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
  /** Where frames[0] starts in {@link GoroutineRecord.view}. */
  framesAt = 0;
  view: DataView = new DataView(new ArrayBuffer(0));

  /** The i-th user PC, innermost first. PCs of x86-64 user space fit in 47 bits. */
  frame(i: number): number {
    const at = this.framesAt + i * 8;
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * 0x1_0000_0000;
  }
}

/**
 * Fills `out` from the record of `len` bytes at `at` in `view`. Returns an error text for a record
 * that doesn't fit its own header (only a mismatched BPF object could write one), else null.
 */
export function decodeRecord(view: DataView, at: number, len: number, out: GoroutineRecord): string | null {
  if (len < Layout.headerSize) return `record of ${len} bytes is shorter than its header`;
  out.view = view;
  out.kind = view.getUint32(at + Layout.kind, true);
  out.pid = view.getUint32(at + Layout.pid, true);
  out.goid = u64(view, at + Layout.goid);
  out.timeNs = u64(view, at + Layout.timeNs);
  out.nframes = view.getUint32(at + Layout.nframes, true);
  out.flags = view.getUint32(at + Layout.flags, true);
  out.framesAt = at + Layout.frames;
  if (out.kind !== Kind.Create && out.kind !== Kind.Exit) return `record of unknown kind ${out.kind}`;
  if (out.nframes > Layout.maxFrames || Layout.headerSize + out.nframes * 8 > len) {
    return `record claims ${out.nframes} frames in ${len} bytes`;
  }
  return null;
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}
