/**
 * Encoder for Go log/slog TextHandler lines, byte-for-byte compatible with Go 1.26, plus a small
 * leveled logger on top of it.
 *
 * Output has to be indistinguishable from a Go program using `slog.NewTextHandler` so that tools written
 * for such logs (and users' eyes) treat gmon's output the same way; test/slog_test.ts checks every
 * function here against the real Go implementation.
 *
 * Strings are JS strings, i.e. UTF-16 that may contain lone surrogates. Those are treated as their WTF-8
 * bytes (ED A0 80 for U+D800) would be treated by Go: invalid UTF-8, so they force quoting and are
 * escaped byte by byte (`"\xed\xa0\x80"`). This keeps the information visible instead of silently turning
 * it into U+FFFD.
 *
 * @module
 */

import type { Level } from "../cli.ts";
import { PRINT_RANGES } from "./isprint.ts";

/** A value slog would print: strings are quoted as needed, numbers and bigints as Go's int64/float64. */
export type AttrValue = string | number | bigint | boolean;

/** A key/value pair, in the order it is written. */
export type Attr = readonly [key: string, value: AttrValue];

/**
 * Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols and the ASCII space), from the
 * ranges scripts/gen-isprint asked Go for.
 */
export function isPrint(r: number): boolean {
  if (r < 0x7f) return r >= 0x20;
  // Binary search for the last range starting at or below r.
  let lo = 0;
  let hi = PRINT_RANGES.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (PRINT_RANGES[mid * 2] <= r) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && r <= PRINT_RANGES[lo * 2 - 1];
}

/** Go's `unicode.IsSpace`: Unicode White_Space. */
export function isSpace(r: number): boolean {
  if (r <= 0xff) return r === 0x20 || (r >= 0x09 && r <= 0x0d) || r === 0x85 || r === 0xa0;
  return r === 0x1680 || (r >= 0x2000 && r <= 0x200a) || r === 0x2028 || r === 0x2029 || r === 0x202f ||
    r === 0x205f || r === 0x3000;
}

// JSON's safe set (no control chars, '"' or '\\') minus space and '=', plus '\\': slog deliberately
// leaves backslashes alone unless something else forces quoting.
const ASCII_NEEDS_QUOTE = new Uint8Array(128);
for (let b = 0; b < 0x20; b++) ASCII_NEEDS_QUOTE[b] = 1;
ASCII_NEEDS_QUOTE[0x20] = 1; // ' '
ASCII_NEEDS_QUOTE[0x22] = 1; // '"'
ASCII_NEEDS_QUOTE[0x3d] = 1; // '='

/** slog's `needsQuoting`: whether a key or string value must be written with {@link quote}. */
export function needsQuoting(s: string): boolean {
  const n = s.length;
  if (n === 0) return true;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (ASCII_NEEDS_QUOTE[c] === 1) return true;
      continue;
    }
    let r = c;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c >= 0xdc00 || d < 0xdc00 || d > 0xdfff) return true; // lone surrogate: invalid UTF-8
      r = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      i++;
    }
    // Go decodes a literal U+FFFD as utf8.RuneError and cannot tell it from a decoding error.
    if (r === 0xfffd || isSpace(r) || !isPrint(r)) return true;
  }
  return false;
}

const HEX = "0123456789abcdef";

function hex(v: number, digits: number): string {
  let out = "";
  for (let s = (digits - 1) * 4; s >= 0; s -= 4) out += HEX[(v >>> s) & 0xf];
  return out;
}

/** Go's `strconv.Quote`: a double-quoted Go string literal; lone surrogates are escaped as WTF-8 bytes. */
export function quote(s: string): string {
  let out = '"';
  const n = s.length;
  let start = 0; // start of the pending run of characters copied verbatim
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue;
    let r = c;
    let w = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d <= 0xdfff) {
        r = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        w = 2;
      } else {
        out += s.slice(start, i) + "\\xed\\x" + hex(0x80 | ((c >> 6) & 0x3f), 2) + "\\x" +
          hex(0x80 | (c & 0x3f), 2);
        start = i + 1;
        continue;
      }
    }
    if (r >= 0x80 && isPrint(r)) {
      i += w - 1;
      continue;
    }
    out += s.slice(start, i);
    switch (r) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x07:
        out += "\\a";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x0b:
        out += "\\v";
        break;
      default:
        if (r < 0x20 || r === 0x7f) out += "\\x" + hex(r, 2);
        else if (r < 0x10000) out += "\\u" + hex(r, 4);
        else out += "\\U" + hex(r, 8);
    }
    i += w - 1;
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

/** A key or string value as slog's TextHandler writes it. */
export function encodeString(s: string): string {
  return needsQuoting(s) ? quote(s) : s;
}

/** Go's `strconv.FormatFloat(f, 'g', -1, 64)`. */
export function formatFloat(f: number): string {
  if (Number.isNaN(f)) return "NaN";
  if (f === Infinity) return "+Inf";
  if (f === -Infinity) return "-Inf";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  // Both JS and Go print the shortest digit string that round-trips; only the layout differs. Go's 'g'
  // with shortest precision switches to exponent form from 1e+06 on, JS only from 1e+21.
  const e = f.toExponential();
  const p = e.indexOf("e");
  const exp = Number(e.slice(p + 1));
  if (exp < -4 || exp >= 6) {
    const a = Math.abs(exp);
    return e.slice(0, p) + (exp < 0 ? "e-" : "e+") + (a < 10 ? "0" : "") + a;
  }
  return String(f);
}

/**
 * A value as slog's TextHandler writes it. Safe integers are written as Go's int64 would be; other
 * numbers as Go's float64.
 */
export function encodeValue(v: AttrValue): string {
  switch (typeof v) {
    case "string":
      return needsQuoting(v) ? quote(v) : v;
    case "number":
      return Number.isSafeInteger(v) ? String(v === 0 ? 0 : v) : formatFloat(v);
    case "bigint":
      return v.toString();
    default:
      return v ? "true" : "false";
  }
}

/**
 * The ` key=value` fragment (with its leading space) for one attribute. Fragments for constant
 * attributes can be computed once and concatenated into many lines; see {@link Logger.logEncoded}.
 * Unlike slog, an attribute with an empty key and empty value is not dropped.
 */
export function encodeAttr(key: string, value: AttrValue): string {
  return " " + (needsQuoting(key) ? quote(key) : key) + "=" + encodeValue(value);
}

/** {@link encodeAttr} over a list, concatenated. */
export function encodeAttrs(attrs: readonly Attr[]): string {
  let out = "";
  for (const [k, v] of attrs) out += encodeAttr(k, v);
  return out;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

// Lines are formatted at a high rate with a clock that mostly stays within the same second, so the
// prefix up to the fractional part is cached.
let cachedSecond = NaN;
let cachedPrefix = "";

/**
 * slog's time format: RFC 3339 in UTC with exactly three fractional digits (truncated, not rounded),
 * e.g. `2026-11-27T06:12:58.587Z`. Go's garbled fractions for years outside 0000..9999 are reproduced too.
 */
export function formatTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  const frac = ms - second * 1000;
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    const y = d.getUTCFullYear();
    // Go's appendInt(year, 4): sign first, then at least four digits.
    const year = y < 0 ? "-" + pad(-y, 4) : pad(y, 4);
    cachedPrefix = year + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + "T" +
      pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2) + ".";
    cachedSecond = second;
  }
  const digits = (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac;
  if (cachedPrefix.length === 20) return cachedPrefix + digits + "Z";
  // Go writes four fractional digits (the last always 1) and then deletes the byte at offset 23, assuming
  // a four-digit year; replicate that for years outside 0000..9999 too.
  const full = cachedPrefix + digits + "1Z";
  return full.slice(0, 23) + full.slice(24);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fracDigits(v: number, prec: number): string {
  // Go's fmtFrac: `prec` digits of v with trailing zeros (and then the dot) dropped.
  let s = pad(v, prec);
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x30) end--;
  s = s.slice(0, end);
  return s === "" ? "" : "." + s;
}

/**
 * Go's `time.Duration.String()` for a duration in nanoseconds: `1.503s`, `250ms`, `1m30.5s`, `0s`,
 * `1.2µs`. Non-integers are truncated and values outside int64 are clamped, as Go cannot represent them.
 */
export function formatDuration(ns: number | bigint): string {
  let b: bigint;
  if (typeof ns === "bigint") b = ns;
  else if (Number.isNaN(ns)) b = 0n;
  else if (!Number.isFinite(ns)) b = ns > 0 ? INT64_MAX : INT64_MIN;
  else b = BigInt(Math.trunc(ns));
  if (b > INT64_MAX) b = INT64_MAX;
  else if (b < INT64_MIN) b = INT64_MIN;
  const neg = b < 0n;
  const u = neg ? -b : b;
  const sign = neg ? "-" : "";
  if (u < 1_000_000_000n) {
    const v = Number(u);
    if (v === 0) return "0s";
    if (v < 1_000) return sign + v + "ns";
    if (v < 1_000_000) return sign + Math.floor(v / 1_000) + fracDigits(v % 1_000, 3) + "µs";
    return sign + Math.floor(v / 1_000_000) + fracDigits(v % 1_000_000, 6) + "ms";
  }
  // Split so the rest fits comfortably in a double: u / 1e9 < 2^34.
  const secs = Number(u / 1_000_000_000n);
  const frac = Number(u % 1_000_000_000n);
  const tail = (secs % 60) + fracDigits(frac, 9) + "s";
  const mins = Math.floor(secs / 60);
  if (mins === 0) return sign + tail;
  const hours = Math.floor(mins / 60);
  if (hours === 0) return sign + (mins % 60) + "m" + tail;
  return sign + hours + "h" + (mins % 60) + "m" + tail;
}

/**
 * One complete TextHandler line (with trailing newline). `encodedAttrs` is a pre-built fragment as
 * returned by {@link encodeAttr}/{@link encodeAttrs}.
 */
export function textLineEncoded(epochMs: number, level: Level, msg: string, encodedAttrs: string): string {
  return "time=" + formatTime(epochMs) + " level=" + level + " msg=" + encodeString(msg) + encodedAttrs +
    "\n";
}

/** One complete TextHandler line (with trailing newline). */
export function textLine(epochMs: number, level: Level, msg: string, attrs?: readonly Attr[]): string {
  return textLineEncoded(epochMs, level, msg, attrs === undefined ? "" : encodeAttrs(attrs));
}

const SEVERITY: Readonly<Record<Level, number>> = { DEBUG: -4, INFO: 0, WARN: 4, ERROR: 8 };

/** A minimal leveled logger writing slog TextHandler lines. */
export class Logger {
  readonly #min: number;
  readonly #write: (line: string) => void;
  readonly #now: () => number;

  /**
   * @param level lowest level that is written
   * @param write receives each complete line, newline included
   * @param now clock in epoch milliseconds (replaceable for tests)
   */
  constructor(level: Level, write: (line: string) => void, now: () => number = Date.now) {
    this.#min = SEVERITY[level];
    this.#write = write;
    this.#now = now;
  }

  /** Whether lines at `level` are written; check it before building expensive attributes. */
  enabled(level: Level): boolean {
    return SEVERITY[level] >= this.#min;
  }

  /** Writes a line at `level` if enabled. */
  log(level: Level, msg: string, attrs?: readonly Attr[]): void {
    if (SEVERITY[level] < this.#min) return;
    this.#write(textLine(this.#now(), level, msg, attrs));
  }

  /** Writes a line whose attributes were already encoded (hot path with cached fragments). */
  logEncoded(level: Level, msg: string, encodedAttrs: string): void {
    if (SEVERITY[level] < this.#min) return;
    this.#write(textLineEncoded(this.#now(), level, msg, encodedAttrs));
  }

  /** Writes a DEBUG line if enabled. */
  debug(msg: string, attrs?: readonly Attr[]): void {
    this.log("DEBUG", msg, attrs);
  }

  /** Writes an INFO line if enabled. */
  info(msg: string, attrs?: readonly Attr[]): void {
    this.log("INFO", msg, attrs);
  }

  /** Writes a WARN line if enabled. */
  warn(msg: string, attrs?: readonly Attr[]): void {
    this.log("WARN", msg, attrs);
  }

  /** Writes an ERROR line if enabled. */
  error(msg: string, attrs?: readonly Attr[]): void {
    this.log("ERROR", msg, attrs);
  }
}
