import { assertEquals } from "./assert.ts";
import {
  Cookie,
  decodeRecord,
  Flags,
  GoroutineRecord,
  Kind,
  Layout,
  PidnsLayout,
  Reg,
} from "../src/bpf/record.ts";
import { DrainCore } from "../src/state/core.ts";

const root = new URL("..", import.meta.url).pathname;

Deno.test("record layout: the TS mirror matches bpf/gmon.h as a C compiler lays it out", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const src = `${dir}/layout.c`;
    Deno.writeTextFileSync(
      src,
      `#include <stdio.h>
#include <stddef.h>
#include <linux/types.h>
#include "gmon.h"
#define F(f) printf("%zu ", offsetof(struct gmon_record, f))
int main(void) {
  F(kind); F(pid); F(goid); F(time_ns); F(nframes); F(flags); F(frames);
  printf("%d %zu %d %d %d %d %d %d ", GMON_RECORD_HEADER_SIZE, sizeof(struct gmon_record), GMON_MAX_FRAMES,
         GMON_CREATE, GMON_EXIT, GMON_EXEC, GMON_GONE, GMON_TRUNCATED);
  printf("%d %d %d %d %d %d %d %d %d ", GMON_FLAGS_PROBE_SHIFT, GMON_PROBE_MASK, GMON_COOKIE_GOID_MASK,
         GMON_COOKIE_REG_SHIFT, GMON_COOKIE_PROBE_SHIFT, GMON_COOKIE_FRAMES_SHIFT, GMON_REG_RAX, GMON_REG_RBX,
         GMON_REG_R14);
  printf("%zu %zu %zu\\n", offsetof(struct gmon_pidns, dev), offsetof(struct gmon_pidns, ino),
         sizeof(struct gmon_pidns));
  return 0;
}`,
    );
    const cc = new Deno.Command("cc", { args: ["-I", `${root}bpf`, "-o", `${dir}/layout`, src] })
      .outputSync();
    assertEquals(cc.code, 0, new TextDecoder().decode(cc.stderr));
    const out = new TextDecoder().decode(new Deno.Command(`${dir}/layout`).outputSync().stdout).trim();
    assertEquals(
      out.split(" ").map(Number),
      [
        Layout.kind,
        Layout.pid,
        Layout.goid,
        Layout.timeNs,
        Layout.nframes,
        Layout.flags,
        Layout.frames,
        Layout.headerSize,
        Layout.size,
        Layout.maxFrames,
        Kind.Create,
        Kind.Exit,
        Kind.Exec,
        Kind.Gone,
        Flags.Truncated,
        Flags.probeShift,
        Flags.probeMask,
        Cookie.goidMask,
        Cookie.regShift,
        Cookie.probeShift,
        Cookie.framesShift,
        Reg.rax,
        Reg.rbx,
        Reg.r14,
        PidnsLayout.dev,
        PidnsLayout.ino,
        PidnsLayout.size,
      ],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("record layout: the drain's core (wasm/drain) reads records as the TS mirror does", () => {
  const core = new DrainCore();
  const layout = Array.from({ length: 13 }, (_, i) => core.x.layout(i));
  assertEquals(layout, [
    Layout.kind,
    Layout.pid,
    Layout.goid,
    Layout.timeNs,
    Layout.nframes,
    Layout.flags,
    Layout.frames,
    Layout.maxFrames,
    Kind.Create,
    Kind.Exit,
    Flags.Truncated,
    Flags.probeShift,
    Flags.probeMask,
  ]);
});

function record(
  fields: { kind: number; pid: number; goid: bigint; time: bigint; frames: bigint[]; flags?: number },
) {
  const buf = new ArrayBuffer(8 + Layout.headerSize + fields.frames.length * 8);
  const v = new DataView(buf);
  const at = 8; // not at 0, as in the ring where a header precedes each record
  v.setUint32(at + Layout.kind, fields.kind, true);
  v.setUint32(at + Layout.pid, fields.pid, true);
  v.setBigUint64(at + Layout.goid, fields.goid, true);
  v.setBigUint64(at + Layout.timeNs, fields.time, true);
  v.setUint32(at + Layout.nframes, fields.frames.length, true);
  v.setUint32(at + Layout.flags, fields.flags ?? 0, true);
  fields.frames.forEach((f, i) => v.setBigUint64(at + Layout.frames + i * 8, f, true));
  return { view: v, at, len: buf.byteLength - 8 };
}

Deno.test("decodeRecord: reads every field, 64-bit values past 2^32 included", () => {
  const r = record({
    kind: Kind.Create,
    pid: 4242,
    goid: 0x1_2345_6789n,
    time: 123_456_789_012_345n,
    frames: [0x7fff_1234_5678n, 0x401000n],
    flags: Flags.Truncated,
  });
  const rec = new GoroutineRecord();
  assertEquals(decodeRecord(r.view, r.at, r.len, rec), null);
  assertEquals(
    [rec.kind, rec.pid, rec.goid, rec.timeNs, rec.nframes, rec.flags],
    [Kind.Create, 4242, 0x1_2345_6789, 123_456_789_012_345, 2, Flags.Truncated],
  );
  assertEquals([rec.frame(0), rec.frame(1)], [0x7fff_1234_5678, 0x401000]);
});

Deno.test("decodeRecord: rejects short records, unknown kinds and frame counts past the record", () => {
  const rec = new GoroutineRecord();
  const ok = record({ kind: Kind.Exit, pid: 1, goid: 7n, time: 1n, frames: [] });
  assertEquals(
    decodeRecord(ok.view, ok.at, Layout.headerSize - 8, rec),
    "record of 24 bytes is shorter than its header",
  );
  const bad = record({ kind: 9, pid: 1, goid: 7n, time: 1n, frames: [] });
  assertEquals(decodeRecord(bad.view, bad.at, bad.len, rec), "record of unknown kind 9");
  const lying = record({ kind: Kind.Create, pid: 1, goid: 7n, time: 1n, frames: [1n] });
  assertEquals(decodeRecord(lying.view, lying.at, lying.len - 8, rec), "record claims 1 frames in 32 bytes");
});
