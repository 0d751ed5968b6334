/**
 * Where the fields gmon reads live in a target's runtime structures: from the target's DWARF when it
 * has it, else from a per-release table read from each release's DWARF (test/snapshot_layout_test.ts
 * checks the table against DWARF builds of every release). A release in neither is refused, never
 * guessed at.
 *
 * @module
 */
import type { StructLayout, TargetImage } from "../target/wasm.ts";
import type { GoRelease } from "../target/goruntime.ts";
import { WAIT_REASONS } from "./waitreasons.ts";

/** Byte offsets in runtime.g (sched.* and stack.* resolved through gobuf and stack). */
export interface GOffsets {
  stackLo: number;
  stackHi: number;
  m: number;
  schedSp: number;
  schedPc: number;
  schedBp: number;
  syscallsp: number;
  syscallpc: number;
  /** null before Go 1.23. */
  syscallbp: number | null;
  atomicstatus: number;
  goid: number;
  waitsince: number;
  waitreason: number;
  lockedm: number;
  /** *sudog: the channel operations the goroutine is parked on. */
  waiting: number;
  /** null before Go 1.21. */
  parentGoid: number | null;
  gopc: number;
  startpc: number;
}

/** Byte offsets in runtime.sudog. */
export interface SudogOffsets {
  elem: number;
  c: number;
  waitlink: number;
}

/** What reading goroutines needs to know about one target's runtime. */
export interface RuntimeLayout {
  minor: number;
  /** sizeof(runtime.g). */
  gSize: number;
  g: GOffsets;
  sudog: SudogOffsets;
  /**
   * runtime.waitReasonStrings from the table (a g's waitreason indexes it); null for a release the
   * table lacks, whose strings must then be read from the process (through .symtab).
   */
  waitReasons: readonly string[] | null;
  /** Where the offsets came from. */
  source: "dwarf" | "table";
}

type Row = { gSize: number; g: GOffsets; sudog: SudogOffsets };

/** The fields every release keeps in place. */
const FIXED = { stackLo: 0, stackHi: 8, m: 48 } as const;

function row(
  gSize: number,
  sched: number,
  [sp, pc, bp]: [number, number, number],
  [syscallsp, syscallpc, syscallbp]: [number, number, number | null],
  [atomicstatus, goid, waitsince, waitreason, lockedm, waiting]: number[],
  [parentGoid, gopc, startpc]: [number | null, number, number],
  sudog: SudogOffsets,
): Row {
  return {
    gSize,
    g: {
      ...FIXED,
      schedSp: sched + sp,
      schedPc: sched + pc,
      schedBp: sched + bp,
      syscallsp,
      syscallpc,
      syscallbp,
      atomicstatus,
      goid,
      waitsince,
      waitreason,
      lockedm,
      waiting,
      parentGoid,
      gopc,
      startpc,
    },
    sudog,
  };
}

const GOBUF_OLD: [number, number, number] = [0, 8, 48]; // gobuf.ret removed in 1.25: bp moved up
const GOBUF_125: [number, number, number] = [0, 8, 40];
const SUDOG_OLD: SudogOffsets = { elem: 24, c: 80, waitlink: 64 };
const SUDOG_126: SudogOffsets = { elem: 24, c: 88, waitlink: 72 };

/** By Go 1.x minor release, read from each release's DWARF (runtime.g, gobuf, sudog). */
const TABLE: ReadonlyMap<number, Row> = new Map([
  [
    19,
    row(392, 56, GOBUF_OLD, [112, 120, null], [144, 152, 168, 176, 232, 328], [null, 296, 312], SUDOG_OLD),
  ],
  [
    20,
    row(392, 56, GOBUF_OLD, [112, 120, null], [144, 152, 168, 176, 232, 328], [null, 296, 312], SUDOG_OLD),
  ],
  [21, row(408, 56, GOBUF_OLD, [112, 120, null], [144, 152, 168, 176, 208, 312], [272, 280, 296], SUDOG_OLD)],
  [22, row(424, 56, GOBUF_OLD, [112, 120, null], [144, 152, 168, 176, 208, 312], [272, 280, 296], SUDOG_OLD)],
  [23, row(432, 56, GOBUF_OLD, [112, 120, 128], [152, 160, 176, 184, 216, 320], [280, 288, 304], SUDOG_OLD)],
  [24, row(440, 56, GOBUF_OLD, [112, 120, 128], [152, 160, 176, 184, 216, 320], [280, 288, 304], SUDOG_OLD)],
  [25, row(440, 56, GOBUF_125, [104, 112, 120], [144, 152, 168, 176, 208, 312], [272, 280, 296], SUDOG_OLD)],
  [26, row(456, 56, GOBUF_125, [104, 112, 120], [144, 152, 168, 176, 208, 320], [280, 288, 304], SUDOG_126)],
  [27, row(456, 56, GOBUF_125, [104, 112, 120], [144, 152, 168, 176, 208, 320], [280, 288, 304], SUDOG_126)],
]);

/** The releases the table covers. */
export const TABLE_MINORS: readonly number[] = [...TABLE.keys()];

/** The table's row for `minor`, or null. */
export function tableLayout(minor: number): Row | null {
  return TABLE.get(minor) ?? null;
}

/** The layout from DWARF, or null when the target has no DWARF (or lacks one of the types). */
export function dwarfLayout(image: TargetImage): Row | null {
  const g = image.struct("runtime.g");
  const gobuf = image.struct("runtime.gobuf");
  const stack = image.struct("runtime.stack");
  const sudog = image.struct("runtime.sudog");
  if (g === null || gobuf === null || stack === null || sudog === null || g.size === null) return null;
  const at = (s: StructLayout, name: string): number => {
    const off = s.members.get(name);
    if (off === undefined) throw new Error(`DWARF: no ${name} in a runtime structure`);
    return off;
  };
  const opt = (s: StructLayout, name: string) => s.members.get(name) ?? null;
  const sched = at(g, "sched");
  return {
    gSize: g.size,
    g: {
      stackLo: at(g, "stack") + at(stack, "lo"),
      stackHi: at(g, "stack") + at(stack, "hi"),
      m: at(g, "m"),
      schedSp: sched + at(gobuf, "sp"),
      schedPc: sched + at(gobuf, "pc"),
      schedBp: sched + at(gobuf, "bp"),
      syscallsp: at(g, "syscallsp"),
      syscallpc: at(g, "syscallpc"),
      syscallbp: opt(g, "syscallbp"),
      atomicstatus: at(g, "atomicstatus"),
      goid: at(g, "goid"),
      waitsince: at(g, "waitsince"),
      waitreason: at(g, "waitreason"),
      lockedm: at(g, "lockedm"),
      waiting: at(g, "waiting"),
      parentGoid: opt(g, "parentGoid"),
      gopc: at(g, "gopc"),
      startpc: at(g, "startpc"),
    },
    sudog: { elem: at(sudog, "elem"), c: at(sudog, "c"), waitlink: at(sudog, "waitlink") },
  };
}

/**
 * The layout for a target built by `release`: DWARF first, then the table. Throws a one-line error for
 * a release in neither.
 */
export function runtimeLayout(image: TargetImage, release: GoRelease): RuntimeLayout {
  const waitReasons = WAIT_REASONS.get(release.minor) ?? null;
  const fromDwarf = image.info().hasDwarf ? dwarfLayout(image) : null;
  const found = fromDwarf ?? (release.major === 1 ? tableLayout(release.minor) : null);
  if (found === null) {
    throw new Error(
      `built by ${release.text}, a release whose goroutine layout gmon does not know` +
        (fromDwarf === null ? " (and without DWARF to read it from)" : ""),
    );
  }
  return { minor: release.minor, ...found, waitReasons, source: fromDwarf !== null ? "dwarf" : "table" };
}
