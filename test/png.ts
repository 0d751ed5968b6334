/**
 * Decodes the PNGs chromium's screenshots are (8-bit RGB or RGBA, not interlaced) into RGBA pixels,
 * so a test can look at what a screenshot shows.
 *
 * @module
 */

/** Pixels, 4 bytes (RGBA) each, row by row. */
export interface Image {
  width: number;
  height: number;
  rgba: Uint8Array;
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes `png`; throws on anything but 8-bit RGB(A), non-interlaced. */
export async function decodePng(png: Uint8Array): Promise<Image> {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((b, i) => png[i] === b)) throw new Error("not a PNG");
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  for (let at = 8; at < png.length;) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const body = png.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = dv.getUint32(at + 8);
      height = dv.getUint32(at + 12);
      const [depth, color, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || (color !== 2 && color !== 6) || interlace !== 0) {
        throw new Error(`unsupported PNG: depth ${depth}, color type ${color}, interlace ${interlace}`);
      }
      channels = color === 6 ? 4 : 3;
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  const joined = new Uint8Array(idat.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of idat) {
    joined.set(c, off);
    off += c.length;
  }
  const raw = await inflate(joined);
  const stride = width * channels;
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const base = y * (stride + 1);
    const filter = raw[base];
    for (let i = 0; i < stride; i++) {
      const x = raw[base + 1 + i];
      const a = i >= channels ? cur[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      cur[i] = (x + [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter]) & 0xff;
    }
    for (let px = 0; px < width; px++) {
      const o = (y * width + px) * 4;
      rgba[o] = cur[px * channels];
      rgba[o + 1] = cur[px * channels + 1];
      rgba[o + 2] = cur[px * channels + 2];
      rgba[o + 3] = channels === 4 ? cur[px * channels + 3] : 255;
    }
    prev.set(cur);
  }
  return { width, height, rgba };
}

/** How many pixels are within `tolerance` (per channel) of the colour `[r, g, b]`. */
export function countColor(img: Image, [r, g, b]: readonly number[], tolerance = 24): number {
  let n = 0;
  for (let o = 0; o < img.rgba.length; o += 4) {
    if (
      Math.abs(img.rgba[o] - r) <= tolerance && Math.abs(img.rgba[o + 1] - g) <= tolerance &&
      Math.abs(img.rgba[o + 2] - b) <= tolerance
    ) n++;
  }
  return n;
}

/** The share of pixels that differ from the most common colour: 0 for a blank image. */
export function nonBackground(img: Image): number {
  const counts = new Map<number, number>();
  const px = new DataView(img.rgba.buffer, img.rgba.byteOffset, img.rgba.byteLength);
  for (let o = 0; o < img.rgba.length; o += 4) {
    const c = px.getUint32(o);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const most = Math.max(...counts.values());
  return 1 - most / (img.width * img.height);
}
