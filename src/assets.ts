/**
 * Build artifacts gmon carries inside itself. Imported as bytes, so `deno compile` embeds them and a
 * run from the checkout loads them through this same code: compiling adds no untested path.
 *
 * @module
 */
import bpfObjectBytes from "../build/gmon.bpf.o" with { type: "bytes" };

/** The compiled bpf/gmon.bpf.c. */
export const bpfObject: Uint8Array<ArrayBuffer> = bpfObjectBytes as Uint8Array<ArrayBuffer>;
