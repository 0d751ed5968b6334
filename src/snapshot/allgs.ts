/**
 * Where the runtime keeps its list of every goroutine: `runtime.allglen` and `runtime.allgptr`, the copy
 * of allgs that the runtime itself reads without a lock (forEachGRace). With a symbol table they are
 * its symbols; stripped binaries keep no data symbols, so gmon decodes runtime.forEachGRace, which in
 * every release starts by loading allglen and then allgptr RIP-relative (`mov reg,[allglen]`,
 * `mov reg,[allgptr]`).
 *
 * @module
 */
import type { TargetImage } from "../target/wasm.ts";

/** Link-time addresses of the two globals. */
export interface AllgsAddrs {
  allglen: number;
  allgptr: number;
  how: "symtab" | "decoded";
}

const RACE_READER = "runtime.forEachGRace";
/** `mov r64,[0xADDR]`: iced's text for a RIP-relative 8-byte load, the address made absolute. */
const RIP_LOAD = /^mov r(?:[a-d]x|[sd]i|bp|\d+),\[0x([0-9a-f]+)\]$/;
/** forEachGRace loads both within its first few instructions. */
const WITHIN = 16;

/** Throws a one-line error when neither the symbols nor the decoded loads give the two addresses. */
export function locateAllgs(image: TargetImage): AllgsAddrs {
  const len = image.symbol("runtime.allglen");
  const ptr = image.symbol("runtime.allgptr");
  if (len !== null && ptr !== null) return { allglen: len.addr, allgptr: ptr.addr, how: "symtab" };
  return decodeAllgs(image);
}

/** The two addresses as runtime.forEachGRace loads them (what stripped binaries leave to go by). */
export function decodeAllgs(image: TargetImage): AllgsAddrs {
  let loads: number[];
  try {
    loads = image.disasm(RACE_READER).insns.slice(0, WITHIN).flatMap((i) => {
      const m = RIP_LOAD.exec(i.text);
      return m === null ? [] : [parseInt(m[1], 16)];
    });
  } catch (e) {
    throw new Error(`cannot find the goroutine list: ${(e as Error).message}`);
  }
  if (loads.length < 2 || loads[0] === loads[1]) {
    throw new Error(`cannot find the goroutine list: ${RACE_READER} does not load allglen and allgptr`);
  }
  return { allglen: loads[0], allgptr: loads[1], how: "decoded" };
}
