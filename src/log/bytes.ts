/**
 * A byte buffer lines are assembled in: pre-encoded fragments are copied in and integers written as
 * digits, so an event line costs a few copies and no string. Whoever appends has made room first
 * ({@link ByteBuffer.reserve}): writes past the end would be lost silently, as typed arrays drop them.
 *
 * @module
 */

const UTF8 = new TextEncoder();

/** UTF-8 bytes of `s`: fragments are encoded once, as strings, and kept as bytes. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return UTF8.encode(s);
}

/**
 * Writes `s` at `dst[at]` if it is all ASCII (its bytes are its UTF-16 units then), without the
 * allocation and engine call of an encode: false, with `dst` partly written, if it is not.
 */
export function asciiInto(s: string, dst: Uint8Array, at: number): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return false;
    dst[at + i] = c;
  }
  return true;
}

/** Appendable bytes: `bytes[0, length)` is what was appended. */
export class ByteBuffer {
  bytes: Uint8Array<ArrayBuffer>;
  length = 0;

  constructor(capacity = 1 << 16) {
    this.bytes = new Uint8Array(capacity);
  }

  /** Room for `n` more bytes, growing if needed. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Appends `src`. */
  put(src: Uint8Array): void {
    const n = src.length;
    // A copy call costs ~40 ns whatever its size; a short array is copied faster byte by byte.
    if (n > 16) {
      this.bytes.set(src, this.length);
    } else {
      const b = this.bytes;
      const at = this.length;
      for (let i = 0; i < n; i++) b[at + i] = src[i];
    }
    this.length += n;
  }

  /** Appends `s`, any string (UTF-8; lone surrogates become U+FFFD), reserving room for it. */
  text(s: string): void {
    this.reserve(s.length * 3);
    this.length += UTF8.encodeInto(s, this.bytes.subarray(this.length)).written;
  }

  /** Appends a non-negative integer below 2^53 in decimal (at most 16 bytes). */
  uint(n: number): void {
    const d = digits(n);
    this.uintAt(this.length, n, d);
    this.length += d;
  }

  /**
   * Writes a non-negative integer below 2^53 in decimal over the `d` bytes at `at` (`d` is
   * {@link digits}`(n)`), as into a line's room for it.
   */
  uintAt(at: number, n: number, d: number): void {
    const b = this.bytes;
    let end = at + d;
    while (n >= 0x8000_0000) {
      const q = Math.floor(n / 100);
      end -= 2;
      putPair(b, end, n - q * 100);
      n = q;
    }
    // In int32 from here: the JIT divides by 100 with a multiply. Two digits a step: every event line
    // has a goid of ~7 digits.
    let m = n | 0;
    while (m >= 100) {
      const q = (m / 100) | 0;
      end -= 2;
      putPair(b, end, m - q * 100);
      m = q;
    }
    if (m >= 10) putPair(b, end - 2, m);
    else b[end - 1] = 48 + m;
  }

  /** The bytes appended so far (a view, valid until the next append). */
  view(): Uint8Array<ArrayBuffer> {
    return this.bytes.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }
}

/** "00".."99": the two digits of each number below 100, as ASCII. */
const PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) [PAIRS[2 * i], PAIRS[2 * i + 1]] = [48 + ((i / 10) | 0), 48 + (i % 10)];

/** Writes the two digits of `v` (below 100) at `b[at]`. */
function putPair(b: Uint8Array, at: number, v: number): void {
  b[at] = PAIRS[2 * v];
  b[at + 1] = PAIRS[2 * v + 1];
}

/** Decimal digits of a non-negative integer below 2^53. */
export function digits(n: number): number {
  let d = 1;
  while (n >= 1e8) {
    n = Math.floor(n / 1e8);
    d += 8;
  }
  if (n >= 1e4) {
    n = (n / 1e4) | 0;
    d += 4;
  }
  return n >= 1000 ? d + 3 : n >= 100 ? d + 2 : n >= 10 ? d + 1 : d;
}
