/**
 * Reading many ranges of a process's memory at once (src/snapshot/memory.ts), tried on gmon's own
 * memory: neighbours read as one range, every address's bytes where the plan says, addresses in any
 * order and far apart, and a merged range over an unmapped page read again address by address.
 */
import { assert, assertEquals } from "./assert.ts";
import { c, pageSize } from "../src/bpf/native.ts";
import { GatherPlan, ProcessMemory } from "../src/snapshot/memory.ts";

const PROT_READ_WRITE = 3;
const MAP_PRIVATE_ANONYMOUS = 0x22;

/** `pages` fresh pages of this process, each byte its offset's low 8 bits; their address and a free. */
function mapped(pages: number): { addr: number; bytes: Uint8Array; unmap: (page: number) => void } {
  const len = pages * pageSize();
  const p = c().mmap(null, BigInt(len), PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0n)!;
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, len));
  bytes.forEach((_, i) => bytes[i] = i & 0xff);
  const addr = Number(Deno.UnsafePointer.value(p));
  const unmap = (page: number) =>
    void c().munmap(Deno.UnsafePointer.create(BigInt(addr + page * pageSize())), BigInt(pageSize()));
  return { addr, bytes, unmap };
}

Deno.test("gather: neighbours in any order are read as one range, each address's bytes where it says", () => {
  const m = mapped(4);
  const mem = new ProcessMemory(Deno.pid);
  const offsets = [3000, 8, 0, 7000, 400, 0];
  const addrs = offsets.map((o, i) => (i === 5 ? 0 : m.addr + o));
  const lens = [100, 16, 24, 200, 64, 8];
  const plan = new GatherPlan(addrs, lens);
  assertEquals(plan.ranges.n, 1, "all within a gap of each other");
  const bytes = plan.read(mem);
  addrs.forEach((a, i) => {
    if (a === 0) return assertEquals(plan.at[i], -1, "address 0 is not read");
    assertEquals([...bytes.subarray(plan.at[i], plan.at[i] + lens[i])], [
      ...m.bytes.subarray(offsets[i], offsets[i] + lens[i]),
    ]);
  });
});

Deno.test("gather: addresses too far apart to pack are sorted all the same", () => {
  const m = mapped(1);
  const mem = new ProcessMemory(Deno.pid);
  // Far beyond any mapping, and a low one: the gap times the index space passes 2^53.
  const addrs = [0x7fff_ffff_0000, m.addr + 64, 0x1000, m.addr];
  const plan = new GatherPlan(addrs, 8);
  const bytes = plan.read(mem);
  assertEquals([plan.at[0], plan.at[2]], [-1, -1], "unmapped addresses are not read");
  assertEquals([...bytes.subarray(plan.at[1], plan.at[1] + 8)], [...m.bytes.subarray(64, 72)]);
  assertEquals([...bytes.subarray(plan.at[3], plan.at[3] + 8)], [...m.bytes.subarray(0, 8)]);
});

Deno.test("gather: a range over an unmapped page is read again address by address", () => {
  const m = mapped(3);
  m.unmap(1);
  const mem = new ProcessMemory(Deno.pid);
  const page = pageSize();
  const addrs = [m.addr + page - 32, m.addr + 2 * page + 16];
  const plan = new GatherPlan(addrs, 16, 2 * page);
  assertEquals(plan.ranges.n, 1, "one range, across the hole");
  const bytes = plan.read(mem);
  assert(plan.at.every((at) => at >= 0), "both read");
  assertEquals([...bytes.subarray(plan.at[0], plan.at[0] + 16)], [...m.bytes.subarray(page - 32, page - 16)]);
  assertEquals([...bytes.subarray(plan.at[1], plan.at[1] + 16)], [
    ...new Uint8Array(16).map((_, i) => (2 * page + 16 + i) & 0xff),
  ]);
});
