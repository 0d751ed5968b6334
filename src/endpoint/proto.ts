/**
 * A small protocol buffers writer, enough for profile.proto: varints, length-delimited fields, packed
 * repeated integers and nested messages. Like Go's runtime/pprof/protobuf.go, a nested message is
 * written in place and its length prefix inserted when it ends.
 *
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const utf8 = new TextEncoder();

/** Builds one protobuf message. Integers are non-negative Numbers below 2^53, or bigints. */
export class ProtoWriter {
  #buf = new Uint8Array(4096);
  #len = 0;
  readonly #starts: number[] = [];

  /** A field of varint type (uint64, int64 >= 0, bool). Zero is written too: callers skip defaults. */
  uint(field: number, v: number | bigint): void {
    this.#varint(field * 8 + WIRE_VARINT);
    this.#varint(v);
  }

  /** A bool field, skipped when false. */
  bool(field: number, v: boolean): void {
    if (v) this.uint(field, 1);
  }

  /** A string field (always written: repeated string tables need their empty strings). */
  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }

  /** A bytes field. */
  bytes(field: number, b: Uint8Array): void {
    this.#varint(field * 8 + WIRE_BYTES);
    this.#varint(b.length);
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** A packed repeated varint field; nothing for an empty list. */
  packed(field: number, vs: readonly number[]): void {
    if (vs.length === 0) return;
    this.#varint(field * 8 + WIRE_BYTES);
    const start = this.#len;
    for (const v of vs) this.#varint(v);
    this.#prefixLength(start);
  }

  /** Starts a nested message in `field`; end it with {@link end}. */
  begin(field: number): void {
    this.#varint(field * 8 + WIRE_BYTES);
    this.#starts.push(this.#len);
  }

  /** Ends the innermost nested message. */
  end(): void {
    const start = this.#starts.pop();
    if (start === undefined) throw new Error("ProtoWriter.end without begin");
    this.#prefixLength(start);
  }

  /** The message's bytes (a copy). */
  finish(): Uint8Array {
    if (this.#starts.length > 0) throw new Error("ProtoWriter.finish inside a nested message");
    return this.#buf.slice(0, this.#len);
  }

  /** Inserts the varint length of the bytes written since `start` in front of them. */
  #prefixLength(start: number): void {
    const n = this.#len - start;
    const size = varintSize(n);
    this.#reserve(size);
    this.#buf.copyWithin(start + size, start, this.#len);
    let at = start;
    let v = n;
    while (v >= 0x80) {
      this.#buf[at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[at] = v;
    this.#len += size;
  }

  #varint(v: number | bigint): void {
    this.#reserve(10);
    if (typeof v === "bigint") {
      if (v < 0n) v = BigInt.asUintN(64, v);
      while (v >= 0x80n) {
        this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      this.#buf[this.#len++] = Number(v);
      return;
    }
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint: ${v} is not a uint53`);
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.#len++] = v;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** gzip of `data`, as Go's pprof handler compresses profiles. */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
