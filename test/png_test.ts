/**
 * The PNG decoder the page test reads screenshots with: images encoded here with every row filter
 * (none, sub, up, average, Paeth), RGB and RGBA, must decode to their pixels.
 */
import { assertEquals } from "./assert.ts";
import { countColor, decodePng, nonBackground } from "./png.ts";

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Encodes `pixels` (rows of channel bytes), row y filtered with filter y % 5, IDAT split in two. */
async function encode(width: number, channels: 3 | 4, rows: number[][]): Promise<Uint8Array> {
  const stride = width * channels;
  const raw: number[] = [];
  rows.forEach((row, y) => {
    const f = y % 5;
    const prev = y === 0 ? new Array(stride).fill(0) : rows[y - 1];
    raw.push(f);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      raw.push((row[i] - [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]) & 0xff);
    }
  });
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, rows.length);
  ihdr.set([8, channels === 4 ? 6 : 2, 0, 0, 0], 8);
  const z = await deflate(Uint8Array.from(raw));
  const half = z.length >> 1;
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", z.subarray(0, half)),
    chunk("IDAT", z.subarray(half)),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("png: every filter, RGB and RGBA, decodes to its pixels", async () => {
  const width = 7;
  for (const channels of [3, 4] as const) {
    // Pseudo-random bytes, so every filter's arithmetic wraps somewhere.
    let seed = 12345;
    const rows = Array.from({ length: 10 }, () =>
      Array.from({ length: width * channels }, () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed >> 16 & 0xff;
      }));
    const img = await decodePng(await encode(width, channels, rows));
    assertEquals([img.width, img.height], [width, 10]);
    const want: number[] = [];
    for (const row of rows) {
      for (let x = 0; x < width; x++) {
        const px = row.slice(x * channels, x * channels + channels);
        want.push(...px, ...(channels === 3 ? [255] : []));
      }
    }
    assertEquals([...img.rgba], want);
  }
});

Deno.test("png: blank is blank; a line of colour is counted", async () => {
  const white = Array.from({ length: 4 }, () => new Array(4 * 3).fill(255));
  const blank = await decodePng(await encode(4, 3, white));
  assertEquals(nonBackground(blank), 0);
  const lined = white.map((r, y) => y === 2 ? [220, 38, 38, 220, 38, 38, 221, 40, 37, 255, 255, 255] : r);
  const img = await decodePng(await encode(4, 3, lined));
  assertEquals(nonBackground(img), 3 / 16);
  assertEquals(countColor(img, [220, 38, 38]), 3);
  assertEquals(countColor(img, [37, 99, 235]), 0);
});
