import { assert, assertEquals } from "./assert.ts";
import { LineWriter, type Out } from "../src/log/writer.ts";

/** A reader that takes at most `room` bytes a write (0: none now), keeping what it took. */
function reader(room: number) {
  const took: Uint8Array[] = [];
  const r = {
    room,
    writes: 0,
    text: () => {
      const all = new Uint8Array(took.reduce((n, b) => n + b.length, 0));
      took.reduce((at, b) => (all.set(b, at), at + b.length), 0);
      return new TextDecoder().decode(all);
    },
    out: {
      write(p: Uint8Array) {
        r.writes++;
        const n = Math.min(p.length, r.room);
        took.push(p.slice(0, n));
        return n;
      },
    } as Out,
  };
  return r;
}

/** `n` lines of `width` bytes each (newline included), numbered from `from`. */
function lines(from: number, n: number, width: number): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += String(i).padStart(width - 1, "0") + "\n";
  return s;
}

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("LineWriter: lines come out in the order given, small batches copied, big ones written from where they are", () => {
  const r = reader(Infinity);
  const w = new LineWriter(r.out);
  const small = lines(0, 10, 16);
  const big = lines(10, 10_000, 16);
  w.put(enc(small));
  w.write("a line written as text\n");
  assertEquals(r.writes, 0, "small batches wait in the buffer");
  w.put(enc(big));
  w.put(enc(small));
  w.flush();
  assertEquals(r.text(), small + "a line written as text\n" + big + small);
  assertEquals(r.writes, 3, "the buffer, the big batch, the last small one");
});

Deno.test("LineWriter: a slow reader gets every line in order; past the queue's bound whole batches are counted as dropped", () => {
  const r = reader(0);
  const w = new LineWriter(r.out);
  const big = lines(0, 10_000, 16);
  w.put(enc("first\n"));
  w.put(enc(big));
  w.put(enc(big.replaceAll("0", "1")));
  w.flush();
  assertEquals(r.text(), "");
  r.room = 4096;
  w.finish(1000);
  assertEquals(r.text(), "first\n" + big + big.replaceAll("0", "1"));
  assertEquals(w.takeDropped(), 0);
  // A reader that takes nothing: 16 MiB queued at most, the rest dropped and counted by line.
  r.room = 0;
  const lots = enc(lines(0, 100_000, 64)); // 6.4 MB
  for (let i = 0; i < 4; i++) w.put(lots);
  w.flush();
  assertEquals(w.takeDropped(), 200_000);
  r.room = Infinity;
  w.finish(1000);
  const got = r.text().slice(6 + 2 * big.length);
  assert(got.length === 2 * lots.length, `${got.length}`);
});
