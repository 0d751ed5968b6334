import { assert, assertEquals } from "./assert.ts";
import { gzip, ProtoWriter } from "../src/endpoint/proto.ts";
import { formatAge } from "../src/log/slog.ts";
import { goroutineDump, goroutineProfile, goroutineText } from "../src/endpoint/pprof.ts";
import { NOW_NS, scene } from "./fake_view.ts";
import { parseTraces } from "./pprof_traces.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("proto: varints, strings, packed fields and nested messages", () => {
  const w = new ProtoWriter();
  w.uint(1, 150);
  w.uint(2, 0);
  w.uint(3, 2n ** 63n + 1n);
  w.string(4, "hé");
  w.packed(5, [3, 270, 86942]);
  w.packed(6, []);
  w.bool(7, false);
  w.bool(8, true);
  assertEquals(
    hex(w.finish()),
    "08 96 01 10 00 18 81 80 80 80 80 80 80 80 80 01 22 03 68 c3 a9 2a 06 03 8e 02 9e a7 05 40 01",
  );
  // A nested message longer than 127 bytes gets a two-byte length inserted in front of it.
  const n = new ProtoWriter();
  n.begin(1);
  n.string(2, "x".repeat(200));
  n.begin(3);
  n.uint(1, 1);
  n.end();
  n.end();
  const b = n.finish();
  assertEquals(hex(b.subarray(0, 6)), "0a cf 01 12 c8 01");
  assertEquals(hex(b.subarray(b.length - 4)), "1a 02 08 01");
  assertEquals(b.length, 3 + 3 + 200 + 4);
});

async function pprof(args: string[], file: string): Promise<string> {
  const r = await new Deno.Command("go", { args: ["tool", "pprof", ...args, file], stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  assertEquals(r.code, 0, dec.decode(r.stderr));
  return dec.decode(r.stdout);
}

Deno.test("pprof: the goroutine profile reads back through go tool pprof", async () => {
  const view = scene();
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/goroutine.pb.gz`;
    await Deno.writeFile(file, await gzip(goroutineProfile(view)));
    const traces = parseTraces(await pprof(["-traces"], file));
    // The fake stacks' main.leak is inlined into main.main: one location, two lines, as Go writes it.
    assert(traces.every((t) => t.inlined.join() === "main.leak"), JSON.stringify(traces));
    const got = traces.map((t) => [t.count, t.pid, t.frames.join(" ")]).sort();
    assertEquals(got, [
      [1, "42", "main.leak main.main runtime.main"],
      [2, "7", "main.leak main.main runtime.main"],
      [3, "42", "main.leak main.main runtime.main"],
    ]);
    const raw = await pprof(["-raw"], file);
    assert(raw.includes("PeriodType: goroutine count"), raw);
    assert(/Samples:\ngoroutine\/count\n/.test(raw), raw);
    // Locations carry file and line.
    assert(/main\.leak \/src\/app\/main\.go:40:0 s=0/.test(raw), raw);
    assert(/main\.leak \/src\/app\/main\.go:44:0 s=0/.test(raw), raw);
    const top = await pprof(["-top"], file);
    assert(/^\s+6\s+100%\s+100%\s+6\s+100%\s+main\.leak \(inline\)$/m.test(top), top);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pprof: an empty profile is still a profile", async () => {
  const view = scene();
  view.live.dropProcess(42);
  view.live.dropProcess(7);
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/goroutine.pb.gz`;
    await Deno.writeFile(file, await gzip(goroutineProfile(view)));
    assertEquals(parseTraces(await pprof(["-traces"], file)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pprof: debug=1 text in the shape of Go's", () => {
  assertEquals(
    goroutineText(scene()),
    `goroutine profile: total 6
3 @ 0x401010 0x401020
# labels: {"pid":"42"}
#\t0x401010\tmain.leak\t/src/app/main.go:40
#\t0x401010\tmain.main\t/src/app/main.go:62
#\t0x401020\truntime.main\t/usr/local/go/src/runtime/proc.go:290

2 @ 0x401010 0x401020
# labels: {"pid":"7"}
#\t0x401010\tmain.leak\t/src/app/main.go:40
#\t0x401010\tmain.main\t/src/app/main.go:62
#\t0x401020\truntime.main\t/usr/local/go/src/runtime/proc.go:290

1 @ 0x402010 0x402020
# labels: {"pid":"42"}
#\t0x402010\tmain.leak\t/src/app/main.go:44
#\t0x402010\tmain.main\t/src/app/main.go:63
#\t0x402020\truntime.main\t/usr/local/go/src/runtime/proc.go:290

`,
  );
});

Deno.test("pprof: debug=2 lists every live goroutine with its age and creation stack", () => {
  const text = [...goroutineDump(scene())].join("");
  const heads = text.split("\n").filter((l) => l.startsWith("goroutine "));
  assertEquals(heads, [
    "goroutine 10 [age 10s, pid 7]:",
    "goroutine 11 [age 5s, pid 7]:",
    "goroutine 10 [age 1m30s, pid 42]:",
    "goroutine 11 [age 1m20s, pid 42]:",
    "goroutine 12 [age 1m10s, pid 42]:",
    "goroutine 13 [age 1m0s, pid 42]:",
  ]);
  assert(
    text.includes(
      "goroutine 13 [age 1m0s, pid 42]:\ncreated by main.leak\n\t/src/app/main.go:44\nmain.main()\n" +
        "\t/src/app/main.go:63\nruntime.main()\n\t/usr/local/go/src/runtime/proc.go:290\n\n",
    ),
    text,
  );
  assertEquals(formatAge(NOW_NS - 98.7654e9), "1.235s");
});
