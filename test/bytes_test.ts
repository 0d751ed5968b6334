import { assertEquals } from "./assert.ts";
import { ByteBuffer, digits, utf8 } from "../src/log/bytes.ts";

const dec = new TextDecoder();

Deno.test("ByteBuffer: integers in decimal, as String() writes them, up to 2^53 - 1", () => {
  const cases = [0, 1, 9, 10, 99, 100, 12345, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 1e15, 2 ** 53 - 1];
  for (let d = 1; d <= 16; d++) cases.push(10 ** (d - 1), 10 ** d - 1);
  for (const n of cases.filter((n) => n <= 2 ** 53 - 1)) {
    const b = new ByteBuffer(1);
    b.reserve(16);
    b.uint(n);
    assertEquals(dec.decode(b.view()), String(n));
    assertEquals(digits(n), String(n).length, String(n));
  }
});

Deno.test("ByteBuffer: appends short and long pieces and text, growing as asked", () => {
  const b = new ByteBuffer(4);
  const long = "x".repeat(100);
  b.reserve(3);
  b.put(utf8("ab"));
  b.reserve(100);
  b.put(utf8(long));
  b.text("µs é 😀");
  b.reserve(4);
  b.uintAt(b.length, 42, 2);
  b.length += 2;
  assertEquals(dec.decode(b.view()), `ab${long}µs é 😀42`);
  b.clear();
  assertEquals(b.view().length, 0);
});
