import assert from "node:assert/strict";
import {
  type AttrValue,
  encodeAttr,
  formatDuration,
  formatTime,
  isPrint,
  isSpace,
  Logger,
  needsQuoting,
  quote,
  textLine,
  textLineEncoded,
} from "../src/output/slog.ts";
import type { Level } from "../src/cli.ts";
import { buildGoRef, removeGoRef, runGoRef } from "./goref.ts";

/** WTF-8: UTF-8 that also encodes lone surrogates, which is how slog.ts treats them. */
function wtf8Hex(s: string): string {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let r = s.charCodeAt(i);
    if (r >= 0xd800 && r < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        r = 0x10000 + ((r - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (r < 0x80) out.push(r);
    else if (r < 0x800) out.push(0xc0 | (r >> 6), 0x80 | (r & 0x3f));
    else if (r < 0x10000) out.push(0xe0 | (r >> 12), 0x80 | ((r >> 6) & 0x3f), 0x80 | (r & 0x3f));
    else out.push(0xf0 | (r >> 18), 0x80 | ((r >> 12) & 0x3f), 0x80 | ((r >> 6) & 0x3f), 0x80 | (r & 0x3f));
  }
  return out.map((b) => b.toString(16).padStart(2, "0")).join("");
}

const TRICKY: string[] = [
  "",
  " ",
  "a b",
  "plain",
  "=",
  "a=b",
  '"',
  'say "hi"',
  "\\",
  "C:\\path\\file",
  "a\\b c",
  "\t",
  "a\tb",
  "\n",
  "line1\nline2",
  "\r\n",
  "\x00",
  "\x01\x07\x08\x0b\x0c\x1b\x1f",
  "\x7f",
  "a\x7fb",
  "a\x7f b",
  "'single'",
  "{}[]<>&|;:,.?!@#$%^*()_+-~`",
  "runtime.newproc at /usr/local/go/src/runtime/proc.go:5020",
  "müller",
  "日本語",
  "Ελληνικά",
  "😀",
  "👩‍👩‍👧",
  "🇫🇷",
  "\u00a0",
  "a\u00a0b",
  "\u00ad",
  "\u0085",
  "\u1680",
  "\u2000\u200a",
  "\u200b",
  "\u200d",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u3000",
  "\ufeff",
  "\ufffd",
  "a\ufffdb",
  "\uffff",
  "e\u0301",
  "\u0301",
  "\u20dd",
  "\ue000",
  "\uf8ff",
  "\u{f0000}",
  "\u{10ffff}",
  "\u0378",
  "\u{e0001}",
  "\u{e0100}",
  "\u{1d173}",
  "\u{1f6d8}",
  "\u0897",
  "\u1c89",
  "\u2427",
  "\u31e4",
  "\ua7cb",
  "\u{10d40}",
  "\u{1cc00}",
  "\u{1fa89}",
  "\ud800",
  "\udfff",
  "a\udc00b",
  "\udbff\ud800",
  "\ud83d",
  "x\ud83d\ude00y",
  "x".repeat(1000),
  "a b".repeat(300),
  "é".repeat(500) + "\n",
];

// Every code point in the BMP's busy start, alone and between letters, plus samples above it.
const CODE_POINTS: number[] = [];
for (let r = 0; r <= 0x3000; r++) CODE_POINTS.push(r);
for (let r = 0x3001; r <= 0x10ffff; r += 0x3d) CODE_POINTS.push(r);
const GENERATED = CODE_POINTS.flatMap((r) => {
  const s = String.fromCodePoint(r);
  return [s, "a" + s + "b"];
});

const NUMBERS: AttrValue[] = [
  0,
  1,
  -1,
  42,
  1937,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2n ** 63n - 1n,
  -(2n ** 63n),
  0.5,
  -1.25,
  1.5e-7,
  0.0001,
  0.00001,
  123456.789,
  1e20,
  1e6 + 0.5,
  999999.5,
  1234567.25,
  1e21,
  2 ** 53,
  1.7976931348623157e308,
  5e-324,
  0.1 + 0.2,
  NaN,
  Infinity,
  -Infinity,
  -0,
  true,
  false,
];

function numberSpec(v: AttrValue): { kind: string; value: string } {
  if (typeof v === "boolean") return { kind: "bool", value: String(v) };
  if (typeof v === "bigint" || Number.isSafeInteger(v)) return { kind: "int", value: String(v) };
  return { kind: "float", value: Object.is(v, -0) ? "-0" : String(v) };
}

const DURATIONS: (number | bigint)[] = [
  0,
  1,
  -1,
  999,
  1000,
  1200,
  1001,
  999_999,
  1_000_000,
  1_500_000,
  250_000_000,
  999_999_999,
  1_000_000_000,
  1_503_000_000,
  -1_503_000_000,
  60_000_000_000,
  90_500_000_000,
  3_600_000_000_000,
  3_661_000_000_001,
  86_400_000_000_000,
  Number.MAX_SAFE_INTEGER,
  2n ** 63n - 1n,
  -(2n ** 63n),
  -(2n ** 63n) + 1n,
];

const TIMES: number[] = [
  0,
  1,
  999,
  1000,
  Date.UTC(2026, 10, 27, 6, 12, 58, 587),
  Date.UTC(2026, 10, 27, 6, 12, 58, 587) + 0.5,
  Date.UTC(2026, 10, 27, 6, 12, 58, 5),
  Date.UTC(2026, 10, 27, 6, 12, 58, 50),
  Date.UTC(2026, 10, 27, 23, 59, 59, 999) + 0.75,
  Date.UTC(2000, 1, 29, 12, 0, 0, 0),
  Date.UTC(1969, 11, 31, 23, 59, 59, 999),
  -1.5,
  Date.UTC(9999, 11, 31, 23, 59, 59, 999),
  Date.parse("0001-01-01T00:00:00.001Z"),
  Date.parse("+012345-06-01T00:00:00.000Z"),
  Date.parse("+012345-06-01T00:00:00.987Z"),
  Date.parse("0000-01-01T00:00:00.000Z"),
  Date.parse("-000001-12-31T23:59:59.000Z"),
  Date.parse("-000001-12-31T23:59:59.999Z"),
  Date.parse("-012345-06-01T00:00:00.123Z"),
  Date.parse("-271821-04-20T00:00:00.000Z"),
  Date.parse("+275760-09-13T00:00:00.000Z"),
];

function instant(ms: number): { ms: number; nanos: number } {
  const whole = Math.floor(ms);
  return { ms: whole, nanos: Math.round((ms - whole) * 1e6) };
}

interface Reference {
  strings: string[];
  numbers: string[];
  durations: string[];
  times: string[];
  isPrint: string;
  isSpace: string;
}

const FIXED = Date.UTC(2026, 10, 27, 6, 12, 58, 587);
const LEVELS: Level[] = ["DEBUG", "INFO", "WARN", "ERROR"];
const strings = [...TRICKY, ...GENERATED];

let refPromise: Promise<Reference> | undefined;
/** Runs the Go reference once for the whole file. */
function reference(): Promise<Reference> {
  refPromise ??= (async () => {
    const bin = await buildGoRef("slogref");
    try {
      const req = {
        strings: strings.map(wtf8Hex),
        numbers: NUMBERS.map(numberSpec),
        durations: DURATIONS.map(String),
        times: TIMES.map(instant),
      };
      const res = await runGoRef(bin, [], JSON.stringify(req));
      assert.equal(res.status, 0, res.stderr);
      return JSON.parse(res.stdout) as Reference;
    } finally {
      await removeGoRef(bin);
    }
  })();
  return refPromise;
}

Deno.test("keys, values and messages are encoded as Go's TextHandler does", async () => {
  const ref = await reference();
  assert.equal(ref.strings.length, strings.length);
  const mismatches: string[] = [];
  strings.forEach((s, i) => {
    const got = textLine(FIXED, LEVELS[i % 4], s, [[s, "v"], ["k", s]]);
    if (got !== ref.strings[i]) {
      mismatches.push(`${JSON.stringify(s)}:\n  go:  ${ref.strings[i]}  got: ${got}`);
    }
  });
  assert.deepEqual(mismatches, []);
});

Deno.test("numbers and booleans are encoded as Go's int64, float64 and bool", async () => {
  const ref = await reference();
  NUMBERS.forEach((v, i) =>
    assert.equal(textLine(FIXED, "INFO", "n", [["n", v]]), ref.numbers[i], String(v))
  );
});

Deno.test("formatDuration matches time.Duration.String", async () => {
  const ref = await reference();
  DURATIONS.forEach((d, i) => assert.equal(formatDuration(d), ref.durations[i], String(d)));
  // Numbers beyond int64 are clamped, as Go cannot represent them.
  assert.equal(formatDuration(1e300), formatDuration(2n ** 63n - 1n));
  assert.equal(formatDuration(-Infinity), formatDuration(-(2n ** 63n)));
  assert.equal(formatDuration(1.9), "1ns");
});

Deno.test("formatTime matches slog's RFC 3339 millisecond format", async () => {
  const ref = await reference();
  TIMES.forEach((ms, i) => assert.equal(textLine(ms, "INFO", "t"), ref.times[i], String(ms)));
  assert.equal(formatTime(Date.UTC(2026, 10, 27, 6, 12, 58, 587)), "2026-11-27T06:12:58.587Z");
});

Deno.test("isPrint and isSpace agree with Go's unicode package on every code point", async () => {
  const ref = await reference();
  const print = Uint8Array.from(atob(ref.isPrint), (c) => c.charCodeAt(0));
  const space = Uint8Array.from(atob(ref.isSpace), (c) => c.charCodeAt(0));
  const diffs: string[] = [];
  for (let r = 0; r <= 0x10ffff; r++) {
    const bit = 1 << (r & 7);
    if (((print[r >> 3] & bit) !== 0) !== isPrint(r)) diffs.push(`IsPrint U+${r.toString(16)}`);
    if (((space[r >> 3] & bit) !== 0) !== isSpace(r)) diffs.push(`IsSpace U+${r.toString(16)}`);
  }
  assert.deepEqual(diffs, []);
});

Deno.test("quoting rules", () => {
  assert.equal(needsQuoting("a\\b"), false);
  assert.equal(needsQuoting("a\x7fb"), false);
  assert.equal(needsQuoting("\ufffd"), true);
  assert.equal(quote("a\x7f\u00a0\u{e0001}\ud800"), '"a\\x7f\\u00a0\\U000e0001\\xed\\xa0\\x80"');
  assert.equal(encodeAttr("stack.0", "runtime.newproc at /x.go:1"), ' stack.0="runtime.newproc at /x.go:1"');
  assert.equal(encodeAttr("goroutine_id", 1937), " goroutine_id=1937");
});

Deno.test("Logger filters by level and reuses pre-encoded attributes", () => {
  const lines: string[] = [];
  const log = new Logger("WARN", (l) => lines.push(l), () => FIXED);
  assert.equal(log.enabled("INFO"), false);
  assert.equal(log.enabled("ERROR"), true);
  log.debug("d");
  log.info("i");
  log.warn("w", [["a", 1]]);
  log.error("e e");
  const stack = encodeAttr("stack.0", "f at x.go:1");
  log.logEncoded("WARN", "runtime.newproc1", encodeAttr("goroutine_id", 7) + stack);
  log.logEncoded("INFO", "skipped", stack);
  assert.deepEqual(lines, [
    "time=2026-11-27T06:12:58.587Z level=WARN msg=w a=1\n",
    'time=2026-11-27T06:12:58.587Z level=ERROR msg="e e"\n',
    'time=2026-11-27T06:12:58.587Z level=WARN msg=runtime.newproc1 goroutine_id=7 stack.0="f at x.go:1"\n',
  ]);
  assert.equal(
    textLineEncoded(FIXED, "INFO", "m", stack),
    textLine(FIXED, "INFO", "m", [["stack.0", "f at x.go:1"]]),
  );
});
