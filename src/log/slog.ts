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
import { ByteBuffer, utf8 } from "./bytes.ts";
import { PRINT_RANGES } from "./isprint.ts";

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
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Nanoseconds as Go's int64 time.Duration holds them: truncated, clamped to int64 (NaN is 0). */
function durationNs(ns: number | bigint): bigint {
  let b: bigint;
  if (typeof ns === "bigint") b = ns;
  else if (Number.isNaN(ns)) b = 0n;
  else if (!Number.isFinite(ns)) b = ns > 0 ? INT64_MAX : INT64_MIN;
  else b = BigInt(Math.trunc(ns));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

/**
 * A time.Duration attribute value: TextHandler writes `Duration.String()` (`1.503s`), JSONHandler the
 * integer nanoseconds (`1503000000`), as encoding/json marshals a time.Duration.
 */
export class Duration {
  /** @param ns nanoseconds; non-integers are truncated and values outside int64 clamped, as in Go */
  constructor(readonly ns: number | bigint) {}
}

/** A value slog would print: strings, numbers and bigints as Go's int64/float64, booleans, durations. */
export type AttrValue = string | number | bigint | boolean | Duration;

/** A group's attributes: `slog.Group(key, ...)`. */
export type Group = readonly Attr[];

/** A key/value pair, in the order it is written; the value may be a group of attributes. */
export type Attr = readonly [key: string, value: AttrValue | Group];

function isGroup(v: AttrValue | Group): v is Group {
  return Array.isArray(v);
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
    case "boolean":
      return v ? "true" : "false";
    default:
      return formatDuration(v.ns);
  }
}

/** A key as TextHandler writes it inside groups `prefix` (`g.h.`, or "" at the top). */
function textKey(prefix: string, key: string): string {
  if (prefix === "") return needsQuoting(key) ? quote(key) : key;
  // slog's appendTwoStrings: quoted when either part needs it.
  return needsQuoting(prefix) || needsQuoting(key) ? quote(prefix + key) : prefix + key;
}

function textAttr(prefix: string, key: string, value: AttrValue | Group): string {
  if (!isGroup(value)) return " " + textKey(prefix, key) + "=" + encodeValue(value);
  // An empty group is left out; a group with an empty key is inlined.
  let out = "";
  const inner = key === "" ? prefix : prefix + key + ".";
  for (const [k, v] of value) out += textAttr(inner, k, v);
  return out;
}

/**
 * The ` key=value` fragment (with its leading space) for one attribute. Fragments for constant
 * attributes can be computed once and concatenated into many lines; see {@link Logger.logEncoded}.
 * A group value writes each of its attributes as ` key.sub=value`. Unlike slog, an attribute with an
 * empty key and empty value is not dropped.
 */
export function encodeAttr(key: string, value: AttrValue | Group): string {
  return textAttr("", key, value);
}

/** {@link encodeAttr} over a list, concatenated. */
export function encodeAttrs(attrs: Group): string {
  let out = "";
  for (const [k, v] of attrs) out += textAttr("", k, v);
  return out;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

// Lines are formatted at a high rate with a clock that mostly stays within the same second, so the
// date and time up to the seconds (`2026-11-27T06:12:58`) are cached.
let cachedSecond = NaN;
let cachedPrefix = "";

function secondPrefix(second: number): string {
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    const y = d.getUTCFullYear();
    // Go's appendInt(year, 4): sign first, then at least four digits.
    const year = y < 0 ? "-" + pad(-y, 4) : pad(y, 4);
    cachedPrefix = year + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + "T" +
      pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2);
    cachedSecond = second;
  }
  return cachedPrefix;
}

/**
 * slog's time format: RFC 3339 in UTC with exactly three fractional digits (truncated, not rounded),
 * e.g. `2026-11-27T06:12:58.587Z`. Go's garbled fractions for years outside 0000..9999 are reproduced too.
 */
export function formatTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  const frac = ms - second * 1000;
  const prefix = secondPrefix(second);
  const digits = (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac;
  if (prefix.length === 19) return prefix + "." + digits + "Z";
  // Go writes four fractional digits (the last always 1) and then deletes the byte at offset 23, assuming
  // a four-digit year; replicate that for years outside 0000..9999 too.
  const full = prefix + "." + digits + "1Z";
  return full.slice(0, 23) + full.slice(24);
}

const YEAR_ERROR = '"!ERROR:time.Time year outside of range [0,9999]"';

/**
 * The time as JSONHandler writes it, quotes included, for the instant truncated to the millisecond:
 * RFC 3339 with Go's RFC3339Nano fraction (trailing zeros trimmed, no dot for a whole second), e.g.
 * `"2026-11-27T06:12:58.58Z"`. Outside years 0000..9999 Go writes an error string first and then the time
 * anyway (`"!ERROR:time.Time year outside of range [0,9999]""12345-06-01T00:00:00Z"`): so does this.
 */
export function formatJSONTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  const frac = ms - second * 1000;
  const prefix = secondPrefix(second);
  const digits = frac === 0
    ? ""
    : frac % 100 === 0
    ? "." + frac / 100
    : frac % 10 === 0
    ? "." + (frac < 100 ? "0" : "") + frac / 10
    : "." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac;
  const t = '"' + prefix + digits + 'Z"';
  return prefix.length === 19 && prefix.charCodeAt(0) !== 0x2d ? t : YEAR_ERROR + t;
}

function fracDigits(v: number, prec: number): string {
  // Go's fmtFrac: `prec` digits of v with trailing zeros (and then the dot) dropped.
  if (v === 0) return "";
  let s = pad(v, prec);
  let end = s.length;
  while (s.charCodeAt(end - 1) === 0x30) end--;
  s = s.slice(0, end);
  return "." + s;
}

/**
 * Go's `time.Duration.String()` for a duration in nanoseconds: `1.503s`, `250ms`, `1m30.5s`, `0s`,
 * `1.2µs`. Non-integers are truncated and values outside int64 are clamped, as Go cannot represent them.
 */
export function formatDuration(ns: number | bigint): string {
  const b = durationNs(ns);
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

/** An age for people: Go's duration format, to the millisecond. */
export function formatAge(ns: number): string {
  return formatDuration(Math.max(0, Math.round(ns / 1e6)) * 1e6);
}

const UNIT_NS = utf8("ns");
const UNIT_US = utf8("µs");
const UNIT_MS = utf8("ms");
const UNIT_S = utf8("s");
const ZERO_S = utf8("0s");

/**
 * `v` (below 10^prec <= 10^9) as Go's fmtFrac writes it: a dot and `prec` digits, trailing zeros
 * dropped. In int32 arithmetic: `%` on a double is a call into the runtime (fmod), per exit line.
 */
function appendFrac(out: ByteBuffer, v: number, prec: number): void {
  let m = v | 0;
  if (m === 0) return;
  for (let q = (m / 10) | 0; m === q * 10; q = (m / 10) | 0) {
    m = q;
    prec--;
  }
  const b = out.bytes;
  b[out.length++] = 0x2e;
  let end = out.length + prec;
  out.length = end;
  for (let i = 0; i < prec; i++) {
    const q = (m / 10) | 0;
    b[--end] = 48 + (m - q * 10);
    m = q;
  }
}

/** `ns` (below 1000 `unit`s) in `unit`s, with up to `prec` fractional digits, then `suffix`. */
function appendScaled(out: ByteBuffer, ns: number, unit: number, prec: number, suffix: Uint8Array): void {
  const whole = Math.floor(ns / unit);
  out.uint(whole);
  appendFrac(out, ns - whole * unit, prec);
  out.put(suffix);
}

/**
 * {@link formatDuration} for the lifetimes of exit lines, appended as bytes in Number arithmetic (no
 * BigInt, no string per event): whole non-negative nanoseconds below 2^53; anything else goes through
 * formatDuration.
 */
export function appendLifetime(out: ByteBuffer, ns: number): void {
  if (!Number.isSafeInteger(ns) || ns < 0) return out.text(formatDuration(ns));
  out.reserve(32);
  if (ns === 0) return out.put(ZERO_S);
  if (ns < 1e3) {
    out.uint(ns);
    return out.put(UNIT_NS);
  }
  if (ns < 1e6) return appendScaled(out, ns, 1e3, 3, UNIT_US);
  if (ns < 1e9) return appendScaled(out, ns, 1e6, 6, UNIT_MS);
  const secs = Math.floor(ns / 1e9);
  const mins = Math.floor(secs / 60);
  const hours = Math.floor(mins / 60);
  if (hours > 0) {
    out.uint(hours);
    out.bytes[out.length++] = 0x68; // h
  }
  if (mins > 0) {
    out.uint(mins - hours * 60);
    out.bytes[out.length++] = 0x6d; // m
  }
  out.uint(secs - mins * 60);
  appendFrac(out, ns - secs * 1e9, 9);
  out.put(UNIT_S);
}

/** {@link appendLifetime} as a string. */
export function formatLifetime(ns: number): string {
  const out = new ByteBuffer(32);
  appendLifetime(out, ns);
  return new TextDecoder().decode(out.view());
}

/** A time.Duration value of JSONHandler: integer nanoseconds, appended as bytes. */
function appendJSONDuration(out: ByteBuffer, ns: number): void {
  if (!Number.isSafeInteger(ns) || ns < 0) return out.text(durationNs(ns).toString());
  out.reserve(16);
  out.uint(ns);
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
export function textLine(epochMs: number, level: Level, msg: string, attrs?: Group): string {
  return textLineEncoded(epochMs, level, msg, attrs === undefined ? "" : encodeAttrs(attrs));
}

// JSON strings: slog's appendEscapedJSONString (encoding/json's with HTML escaping off).

/**
 * A JSON string literal, quotes included, as slog's JSONHandler writes keys and string values:
 * `"` and `\` escaped, `\n` `\r` `\t` by name, other controls as `\u00XX`, U+2028 and U+2029 as `\u2028`
 * and `\u2029`; `<`, `>`, `&` and DEL as they are. A lone surrogate is 3 bytes of invalid UTF-8 to Go
 * (its WTF-8 form, as for text), so it becomes `\ufffd\ufffd\ufffd`.
 */
export function jsonString(s: string): string {
  const n = s.length;
  let out = '"';
  let start = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
      out += s.slice(start, i);
      switch (c) {
        case 0x22:
          out += '\\"';
          break;
        case 0x5c:
          out += "\\\\";
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
        default:
          out += "\\u00" + hex(c, 2);
      }
      start = i + 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      out += s.slice(start, i) + "\\ufffd\\ufffd\\ufffd";
      start = i + 1;
    } else if (c === 0x2028 || c === 0x2029) {
      out += s.slice(start, i) + (c === 0x2028 ? "\\u2028" : "\\u2029");
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/** A value as JSONHandler writes it (numbers as Go's int64/float64 through encoding/json). */
export function jsonValue(v: AttrValue): string {
  switch (typeof v) {
    case "string":
      return jsonString(v);
    case "number":
      if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
      // encoding/json refuses NaN and ±Inf; slog writes the error as the value.
      if (!Number.isFinite(v)) return '"!ERROR:json: unsupported value: ' + formatFloat(v) + '"';
      // encoding/json: 'f' below 1e21 and from 1e-6, else 'e' with a 1-digit exponent kept short, which
      // is exactly JavaScript's shortest round-trip form.
      return String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    default:
      return durationNs(v.ns).toString();
  }
}

function jsonAttr(key: string, value: AttrValue | Group): string {
  if (!isGroup(value)) return "," + jsonString(key) + ":" + jsonValue(value);
  let inner = "";
  for (const [k, v] of value) inner += jsonAttr(k, v);
  // An empty group is left out; a group with an empty key is inlined.
  if (inner === "" || key === "") return inner;
  return "," + jsonString(key) + ":{" + inner.slice(1) + "}";
}

/** Output format of the lines: Go slog's TextHandler or JSONHandler. */
export type Format = "text" | "json";

/**
 * One way of writing slog lines. Fragments are pre-encoded strings that callers concatenate: a line is
 * `head(time(ms), level, msg)` + attribute fragments + `end`, each attribute fragment (`attr`, `group`,
 * `key` + `value`) carrying its own leading separator (` key=v` in text, `,"key":v` in JSON). Constant
 * fragments, e.g. a stack's, can be encoded once and reused on many lines.
 */
export interface Encoding {
  readonly format: Format;
  /** The time value, truncated to the millisecond: `2026-11-27T06:12:58.580Z` / `"2026-11-27T06:12:58.58Z"`. */
  time(epochMs: number): string;
  /** A line's start, up to its last built-in attribute: `time=T level=INFO msg=m` / `{"time":T,"level":"INFO","msg":"m"`. */
  head(time: string, level: Level, msg: string): string;
  /** What ends a line: `\n` / `}\n`. */
  readonly end: string;
  /** An attribute's separator and key, before its value: ` key=` / `,"key":`. */
  key(key: string): string;
  /** A value; strings are quoted as the format needs. */
  value(v: AttrValue): string;
  /**
   * Appends a time.Duration value from nanoseconds: `1.503s` / `1503000000` (fast for whole ns below
   * 2^53).
   */
  appendDuration(out: ByteBuffer, ns: number): void;
  /** One attribute's fragment; a group value is {@link group}. */
  attr(key: string, value: AttrValue | Group): string;
  /** `slog.Group(key, ...)`: ` key.a=1 key.b=2` / `,"key":{"a":1,"b":2}`; nothing when empty. */
  group(key: string, attrs: Group): string;
  /**
   * What precedes member `key`'s value in {@link group} `group` (`first`: the group's first member,
   * which opens it): ` group.key=` / `,"group":{"key":` or `,"key":`. With {@link groupEnd}, a group is
   * assembled from values encoded once (a frame of many stacks) rather than encoded whole.
   */
  member(group: string, key: string, first: boolean): string;
  /** What closes a group that has members: nothing / `}`. */
  readonly groupEnd: string;
  /** Fragments of a list of attributes, concatenated. */
  attrs(attrs: Group): string;
  /** One complete line, newline included, from an encoded time and encoded attributes. */
  line(time: string, level: Level, msg: string, encodedAttrs: string): string;
}

/** Go slog's TextHandler. */
export const TEXT: Encoding = Object.freeze({
  format: "text" as const,
  time: formatTime,
  head: (time: string, level: Level, msg: string) =>
    "time=" + time + " level=" + level + " msg=" + encodeString(msg),
  end: "\n",
  key: (key: string) => " " + textKey("", key) + "=",
  value: encodeValue,
  appendDuration: appendLifetime,
  attr: encodeAttr,
  group: (key: string, attrs: Group) => textAttr("", key, attrs),
  member: (group: string, key: string) => " " + textKey(group + ".", key) + "=",
  groupEnd: "",
  attrs: encodeAttrs,
  line: (time: string, level: Level, msg: string, encodedAttrs: string) =>
    "time=" + time + " level=" + level + " msg=" + encodeString(msg) + encodedAttrs + "\n",
});

/** Go slog's JSONHandler. */
export const JSON_LINES: Encoding = Object.freeze({
  format: "json" as const,
  time: formatJSONTime,
  head: (time: string, level: Level, msg: string) =>
    '{"time":' + time + ',"level":"' + level + '","msg":' + jsonString(msg),
  end: "}\n",
  key: (key: string) => "," + jsonString(key) + ":",
  value: jsonValue,
  appendDuration: appendJSONDuration,
  attr: jsonAttr,
  group: (key: string, attrs: Group) => jsonAttr(key, attrs),
  member: (group: string, key: string, first: boolean) =>
    (first ? "," + jsonString(group) + ":{" : ",") + jsonString(key) + ":",
  groupEnd: "}",
  attrs: (attrs: Group) => {
    let out = "";
    for (const [k, v] of attrs) out += jsonAttr(k, v);
    return out;
  },
  line: (time: string, level: Level, msg: string, encodedAttrs: string) =>
    '{"time":' + time + ',"level":"' + level + '","msg":' + jsonString(msg) + encodedAttrs + "}\n",
});

/** The encoding for `-format`. */
export function encoding(format: Format): Encoding {
  return format === "json" ? JSON_LINES : TEXT;
}

const SEVERITY: Readonly<Record<Level, number>> = { DEBUG: -4, INFO: 0, WARN: 4, ERROR: 8 };

/** A minimal leveled logger writing slog lines (TextHandler's shape unless told otherwise). */
export class Logger {
  readonly #min: number;
  readonly #write: (line: string) => void;
  readonly #enc: Encoding;
  readonly #now: () => number;

  /**
   * @param level lowest level that is written
   * @param write receives each complete line, newline included
   * @param enc the lines' format
   * @param now clock in epoch milliseconds (replaceable for tests)
   */
  constructor(
    level: Level,
    write: (line: string) => void,
    enc: Encoding = TEXT,
    now: () => number = Date.now,
  ) {
    this.#min = SEVERITY[level];
    this.#write = write;
    this.#enc = enc;
    this.#now = now;
  }

  /** The lines' format: encode fragments for {@link logEncoded} with it. */
  get encoding(): Encoding {
    return this.#enc;
  }

  /** Whether lines at `level` are written; check it before building expensive attributes. */
  enabled(level: Level): boolean {
    return SEVERITY[level] >= this.#min;
  }

  /** Writes a line at `level` if enabled. */
  log(level: Level, msg: string, attrs?: Group): void {
    if (SEVERITY[level] < this.#min) return;
    const enc = this.#enc;
    this.#write(enc.line(enc.time(this.#now()), level, msg, attrs === undefined ? "" : enc.attrs(attrs)));
  }

  /** Writes a line whose attributes were already encoded with {@link encoding} (hot path with cached fragments). */
  logEncoded(level: Level, msg: string, encodedAttrs: string): void {
    if (SEVERITY[level] < this.#min) return;
    const enc = this.#enc;
    this.#write(enc.line(enc.time(this.#now()), level, msg, encodedAttrs));
  }

  /** Writes a DEBUG line if enabled. */
  debug(msg: string, attrs?: Group): void {
    this.log("DEBUG", msg, attrs);
  }

  /** Writes an INFO line if enabled. */
  info(msg: string, attrs?: Group): void {
    this.log("INFO", msg, attrs);
  }

  /** Writes a WARN line if enabled. */
  warn(msg: string, attrs?: Group): void {
    this.log("WARN", msg, attrs);
  }

  /** Writes an ERROR line if enabled. */
  error(msg: string, attrs?: Group): void {
    this.log("ERROR", msg, attrs);
  }
}
