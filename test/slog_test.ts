import assert from "node:assert/strict";
import {
  type Attr,
  type AttrValue,
  Duration,
  encodeAttr,
  type Encoding,
  encoding,
  formatDuration,
  formatJSONTime,
  formatTime,
  type Group,
  isPrint,
  isSpace,
  JSON_LINES,
  jsonString,
  Logger,
  needsQuoting,
  quote,
  TEXT,
  textLine,
  textLineEncoded,
} from "../src/log/slog.ts";
import { EventLines } from "../src/log/events.ts";
import { ByteBuffer } from "../src/log/bytes.ts";
import { StackTable } from "../src/symbolize/stacks.ts";
import type { Level } from "../src/cli.ts";
import { buildGoRef, removeGoRef, runGoRef } from "./goref.ts";
import { written } from "./written.ts";

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

/** Attribute lists of every kind, as gmon writes them and beyond, each written as one line msg=a. */
const ATTR_LINES: Attr[][] = [
  [
    ["s", "plain"],
    ["q", "a b"],
    ["i", 42],
    ["neg", -7],
    ["f", 1.5],
    ["b", true],
    ["b2", false],
    ["d", new Duration(1_503_000_000)],
    ["big", 2n ** 63n - 1n],
  ],
  // A creation, an exit, a leak report, the attach and detach lines, as gmon builds them.
  [
    ["goroutine_id", 1937],
    ["stack_id", 7],
    ["stack", [
      ["0", "runtime.newproc at /usr/local/go/src/runtime/proc.go:5343"],
      ["1", "main.spawnNamed at /src/app/main.go:50"],
      ["2", "runtime.goexit at /usr/local/go/src/runtime/asm_amd64.s:1771"],
    ]],
    ["stack_truncated", true],
    ["pid", 4242],
  ],
  [
    ["goroutine_id", 1937],
    ["stack_id", 1],
    ["stack", [["0", "runtime.goexit1 at /usr/local/go/src/runtime/proc.go:4487"]]],
    ["created_stack_id", 7],
    ["lifetime", new Duration(1_503_000_000)],
    ["pid", 4242],
  ],
  [["site", "main.watch"], ["live", 20], ["oldest", "3.2s"], ["growth", "+20"], ["stack_id", 8], [
    "pid",
    4242,
  ]],
  [["path", "/srv/app/server"], ["go_version", "go1.26.8"], ["pid", "any"]],
  [["created", 51], ["exited", 50], ["live", 1], ["lost", 0]],
  // Groups: empty ones are left out, empty keys inline, nesting, quoting of the joined text keys.
  [["g", []]],
  [["a", 1], ["g", []], ["b", 2]],
  [["outer", [["empty", []]]], ["after", 1]],
  [["outer", [["empty", []], ["x", 1]]], ["after", 1]],
  [["", [["inl", 1], ["x", "y z"]]]],
  [["g", [["", [["k", 1]]]]], ["h", 2]],
  [["outer", [["inner", [["k", "v"], ["d", new Duration(250_000_000)]]], ["n", 1]]]],
  [["a b", [["c=d", 'e"f'], ["\u2028", "<&>"], ["", "empty key"]]]],
  [["g", [["f", 0.1 + 0.2], ["nan", NaN], ["inf", -Infinity], ["neg0", -0], ["e", 1e21]]]],
  [["stack", [["0", "\ud800 lone"], ["1", "tab\there"], ["2", "é\u0000\u007f"]]]],
  [["", ""], ["", "x"], ["k", ""]],
  [["d0", new Duration(0)], ["dneg", new Duration(-1)], ["dmax", new Duration(2n ** 63n - 1n)], [
    "dfrac",
    new Duration(1.9),
  ]],
];

interface AttrSpec {
  kind: string;
  key: string;
  value: string;
  attrs: AttrSpec[] | null;
}

function attrSpec([key, v]: Attr): AttrSpec {
  if (Array.isArray(v)) {
    return { kind: "group", key: wtf8Hex(key), value: "", attrs: (v as Group).map(attrSpec) };
  }
  const value = v as AttrValue;
  if (typeof value === "string") {
    return { kind: "string", key: wtf8Hex(key), value: wtf8Hex(value), attrs: null };
  }
  if (value instanceof Duration) {
    const ns = typeof value.ns === "bigint" ? value.ns : BigInt(Math.trunc(value.ns));
    return { kind: "duration", key: wtf8Hex(key), value: String(ns), attrs: null };
  }
  return { ...numberSpec(value), key: wtf8Hex(key), attrs: null };
}

/** What one of Go's handlers wrote. */
interface Lines {
  strings: string[];
  numbers: string[];
  durations: string[];
  times: string[];
  attrs: string[];
}

interface Reference {
  text: Lines;
  json: Lines;
  durations: string[];
  isPrint: string;
  isSpace: string;
}

const FIXED = Date.UTC(2026, 10, 27, 6, 12, 58, 587);
const LEVELS: Level[] = ["DEBUG", "INFO", "WARN", "ERROR"];
const strings = [...TRICKY, ...GENERATED];
const ENCODINGS: readonly Encoding[] = [TEXT, JSON_LINES];

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
        attrs: ATTR_LINES.map((l) => l.map(attrSpec)),
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

/** The attributes of a strings line: s="v" k=s g.s="v" g.0=s s.k=s (and their JSON forms). */
function stringAttrs(s: string): Attr[] {
  return [[s, "v"], ["k", s], ["g", [[s, "v"], ["0", s]]], [s, [["k", s]]]];
}

/** Compares many lines with Go's, reporting every mismatch at once. */
function assertLines(got: string[], want: string[], label: (i: number) => string): void {
  assert.equal(got.length, want.length);
  const mismatches: string[] = [];
  got.forEach((g, i) => {
    if (g !== want[i]) mismatches.push(`${label(i)}:\n  go:  ${want[i]}  got: ${g}`);
  });
  assert.deepEqual(mismatches, []);
}

for (const enc of ENCODINGS) {
  const name = enc === TEXT ? "TextHandler" : "JSONHandler";
  const line = (ms: number, level: Level, msg: string, attrs: Group) =>
    enc.line(enc.time(ms), level, msg, enc.attrs(attrs));

  Deno.test(`${enc.format}: keys, values, groups and messages are encoded as Go's ${name} does`, async () => {
    const ref = (await reference())[enc.format];
    const got = strings.map((s, i) => line(FIXED, LEVELS[i % 4], s, stringAttrs(s)));
    assertLines(got, ref.strings, (i) => JSON.stringify(strings[i]));
  });

  Deno.test(`${enc.format}: numbers and booleans are encoded as Go's int64, float64 and bool`, async () => {
    const ref = (await reference())[enc.format];
    assertLines(
      NUMBERS.map((v) => line(FIXED, "INFO", "n", [["n", v]])),
      ref.numbers,
      (i) => String(NUMBERS[i]),
    );
  });

  Deno.test(`${enc.format}: durations are encoded as Go's ${name} writes a time.Duration`, async () => {
    const ref = (await reference())[enc.format];
    assertLines(
      DURATIONS.map((d) => line(FIXED, "INFO", "d", [["d", new Duration(d)]])),
      ref.durations,
      (i) => String(DURATIONS[i]),
    );
    // The hot path (numbers as bytes, no BigInt) agrees with the general one.
    for (const d of [...DURATIONS, 1e300, -Infinity, NaN, 1.9, -0]) {
      if (typeof d !== "number") continue;
      const out = new ByteBuffer(4);
      enc.appendDuration(out, d);
      assert.equal(
        enc.key("d") + new TextDecoder().decode(out.view()),
        enc.attr("d", new Duration(d)),
        String(d),
      );
    }
  });

  Deno.test(`${enc.format}: times are encoded as Go's ${name} writes them`, async () => {
    const ref = (await reference())[enc.format];
    assertLines(TIMES.map((ms) => line(ms, "INFO", "t", [])), ref.times, (i) => String(TIMES[i]));
  });

  Deno.test(`${enc.format}: attributes of every kind, groups included, as Go's ${name} writes them`, async () => {
    const ref = (await reference())[enc.format];
    assertLines(
      ATTR_LINES.map((l) => line(FIXED, "INFO", "a", l)),
      ref.attrs,
      (i) => JSON.stringify(ref.attrs[i]),
    );
  });

  Deno.test(`${enc.format}: fragments concatenate into the same line as a list`, () => {
    for (const l of ATTR_LINES) {
      const parts = l.map(([k, v]) =>
        Array.isArray(v) ? enc.group(k, v as Group) : enc.attr(k, v as AttrValue)
      );
      assert.equal(parts.join(""), enc.attrs(l));
      assert.equal(
        enc.head(enc.time(FIXED), "INFO", "a") + parts.join("") + enc.end,
        line(FIXED, "INFO", "a", l),
      );
    }
    assert.equal(enc.key("k") + enc.value("a b"), enc.attr("k", "a b"));
  });
}

Deno.test("text: the text encoding is the TextHandler functions'", async () => {
  const ref = await reference();
  assertLines(
    strings.map((s, i) => textLine(FIXED, LEVELS[i % 4], s, stringAttrs(s))),
    ref.text.strings,
    (i) => JSON.stringify(strings[i]),
  );
  assertLines(TIMES.map((ms) => textLine(ms, "INFO", "t")), ref.text.times, (i) => String(TIMES[i]));
  assert.equal(encoding("text"), TEXT);
  assert.equal(encoding("json"), JSON_LINES);
});

Deno.test("formatDuration matches time.Duration.String", async () => {
  const ref = await reference();
  DURATIONS.forEach((d, i) => assert.equal(formatDuration(d), ref.durations[i], String(d)));
  // Numbers beyond int64 are clamped, as Go cannot represent them.
  assert.equal(formatDuration(1e300), formatDuration(2n ** 63n - 1n));
  assert.equal(formatDuration(-Infinity), formatDuration(-(2n ** 63n)));
  assert.equal(formatDuration(1.9), "1ns");
});

Deno.test("formatTime and formatJSONTime: slog's millisecond text time, RFC3339Nano in JSON", () => {
  const t = Date.UTC(2026, 10, 27, 6, 12, 58, 587);
  assert.equal(formatTime(t), "2026-11-27T06:12:58.587Z");
  assert.equal(formatJSONTime(t), '"2026-11-27T06:12:58.587Z"');
  assert.equal(formatJSONTime(t - 7), '"2026-11-27T06:12:58.58Z"');
  assert.equal(formatJSONTime(t - 87), '"2026-11-27T06:12:58.5Z"');
  assert.equal(formatJSONTime(t - 537), '"2026-11-27T06:12:58.05Z"');
  assert.equal(formatJSONTime(t - 582), '"2026-11-27T06:12:58.005Z"');
  assert.equal(formatJSONTime(t - 587 + 0.9), '"2026-11-27T06:12:58Z"');
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
  assert.equal(encodeAttr("stack", [["0", "f at /x.go:1"]]), ' stack.0="f at /x.go:1"');
  assert.equal(JSON_LINES.group("stack", [["0", "f at /x.go:1"]]), ',"stack":{"0":"f at /x.go:1"}');
  assert.equal(
    jsonString('<&>\u2028"\\\b\f\x7f\ud800'),
    '"<&>\\u2028\\"\\\\\\u0008\\u000c\x7f\\ufffd\\ufffd\\ufffd"',
  );
});

for (const enc of ENCODINGS) {
  Deno.test(`${enc.format}: Logger filters by level and reuses pre-encoded attributes`, () => {
    const lines: string[] = [];
    const log = new Logger("WARN", (l) => lines.push(l), enc, () => FIXED);
    assert.equal(log.encoding, enc);
    assert.equal(log.enabled("INFO"), false);
    assert.equal(log.enabled("ERROR"), true);
    log.debug("d");
    log.info("i");
    log.warn("w", [["a", 1]]);
    log.error("e e");
    const stack = enc.group("stack", [["0", "f at x.go:1"]]);
    log.logEncoded("WARN", "runtime.newproc1", enc.attr("goroutine_id", 7) + stack);
    log.logEncoded("INFO", "skipped", stack);
    const t = enc.time(FIXED);
    assert.deepEqual(lines, [
      enc.line(t, "WARN", "w", enc.attr("a", 1)),
      enc.line(t, "ERROR", "e e", ""),
      enc.line(
        t,
        "WARN",
        "runtime.newproc1",
        enc.attrs([["goroutine_id", 7], ["stack", [["0", "f at x.go:1"]]]]),
      ),
    ]);
    if (enc === TEXT) {
      assert.deepEqual(lines, [
        "time=2026-11-27T06:12:58.587Z level=WARN msg=w a=1\n",
        'time=2026-11-27T06:12:58.587Z level=ERROR msg="e e"\n',
        'time=2026-11-27T06:12:58.587Z level=WARN msg=runtime.newproc1 goroutine_id=7 stack.0="f at x.go:1"\n',
      ]);
      assert.equal(
        textLineEncoded(FIXED, "INFO", "m", stack),
        textLine(FIXED, "INFO", "m", [["stack.0", "f at x.go:1"]]),
      );
    } else {
      assert.deepEqual(lines.map((l) => JSON.parse(l)), [
        { time: "2026-11-27T06:12:58.587Z", level: "WARN", msg: "w", a: 1 },
        { time: "2026-11-27T06:12:58.587Z", level: "ERROR", msg: "e e" },
        {
          time: "2026-11-27T06:12:58.587Z",
          level: "WARN",
          msg: "runtime.newproc1",
          goroutine_id: 7,
          stack: { "0": "f at x.go:1" },
        },
      ]);
    }
  });

  Deno.test(`${enc.format}: EventLines and StackTable write creation and exit lines`, () => {
    const symbolize = (pcs: readonly number[]) =>
      pcs.map((pc) =>
        pc === 0x1000 ? [{ func: "runtime.goexit1", file: "/go/src/runtime/proc.go", line: 4487 }] : [
          { func: "main.inlined", file: '/src/a "b"/main.go', line: pc & 0xff },
          { func: "main.main", file: "/src/main.go", line: 88 },
        ]
      );
    const stacks = new StackTable(symbolize, enc);
    const exitStack = stacks.fixed([0x1000]);
    const createStack = stacks.fixed([0x2011, 0x2022]);
    const empty = stacks.fixed([]);
    const ms = Date.parse("2026-11-27T06:12:58.990Z") + 0.25;
    const lines = new EventLines(true, enc);
    const out = [
      written((o) => {
        lines.at(ms);
        lines.created(o, 1937, createStack, 4242, false);
      }),
      written((o) => {
        lines.at(ms);
        lines.created(o, 1938, createStack, 4242, true);
      }),
      written((o) => {
        lines.at(ms);
        lines.exited(o, 1937, exitStack, 4242, createStack.id, 1_503_000_000);
      }),
      written((o) => {
        lines.at(ms + 10);
        lines.exited(o, 5, exitStack, 4242);
      }),
      written((o) => {
        const l = new EventLines(false, enc);
        l.at(ms);
        l.created(o, 7, empty, 1, false);
      }),
    ];
    // The same lines through the general path: the stack is slog.Group("stack", "0", f0, ...).
    const frames = (e: typeof createStack): Attr[] =>
      e.frames.length === 0 ? [] : [["stack", e.frames.map((f, i) => [String(i), f] as const)]];
    const want = [
      enc.line(
        enc.time(ms),
        "INFO",
        "runtime.newproc1",
        enc.attrs([
          ["goroutine_id", 1937],
          ["stack_id", createStack.id],
          ...frames(createStack),
          ["pid", 4242],
        ]),
      ),
      enc.line(
        enc.time(ms),
        "INFO",
        "runtime.newproc1",
        enc.attrs([
          ["goroutine_id", 1938],
          ["stack_id", createStack.id],
          ...frames(createStack),
          ["stack_truncated", true],
          ["pid", 4242],
        ]),
      ),
      enc.line(
        enc.time(ms),
        "INFO",
        "runtime.goexit1",
        enc.attrs([
          ["goroutine_id", 1937],
          ["stack_id", exitStack.id],
          ...frames(exitStack),
          ["created_stack_id", createStack.id],
          ["lifetime", new Duration(1_503_000_000)],
          ["pid", 4242],
        ]),
      ),
      enc.line(
        enc.time(ms + 10),
        "INFO",
        "runtime.goexit1",
        enc.attrs([
          ["goroutine_id", 5],
          ["stack_id", exitStack.id],
          ...frames(exitStack),
          ["pid", 4242],
        ]),
      ),
      enc.line(
        enc.time(ms),
        "INFO",
        "runtime.newproc1",
        enc.attrs([["goroutine_id", 7], ["stack_id", empty.id]]),
      ),
    ];
    assert.deepEqual(out, want);
    if (enc === TEXT) {
      assert.equal(
        out[2],
        'time=2026-11-27T06:12:58.990Z level=INFO msg=runtime.goexit1 goroutine_id=1937 stack_id=1 stack.0="runtime.goexit1 at /go/src/runtime/proc.go:4487" created_stack_id=2 lifetime=1.503s pid=4242\n',
      );
      return;
    }
    const parsed = out.map((l) => {
      assert.ok(l.endsWith("}\n") && !l.slice(0, -1).includes("\n"), l);
      return JSON.parse(l);
    });
    assert.deepEqual(parsed[0], {
      time: "2026-11-27T06:12:58.99Z",
      level: "INFO",
      msg: "runtime.newproc1",
      goroutine_id: 1937,
      stack_id: 2,
      stack: {
        "0": 'main.inlined at /src/a "b"/main.go:17',
        "1": "main.main at /src/main.go:88",
        "2": 'main.inlined at /src/a "b"/main.go:34',
        "3": "main.main at /src/main.go:88",
      },
      pid: 4242,
    });
    assert.deepEqual(Object.keys(parsed[0]), [
      "time",
      "level",
      "msg",
      "goroutine_id",
      "stack_id",
      "stack",
      "pid",
    ]);
    assert.equal(parsed[1].stack_truncated, true);
    assert.deepEqual(parsed[2], {
      time: "2026-11-27T06:12:58.99Z",
      level: "INFO",
      msg: "runtime.goexit1",
      goroutine_id: 1937,
      stack_id: 1,
      stack: { "0": "runtime.goexit1 at /go/src/runtime/proc.go:4487" },
      created_stack_id: 2,
      lifetime: 1503000000,
      pid: 4242,
    });
    assert.deepEqual(Object.keys(parsed[3]), [
      "time",
      "level",
      "msg",
      "goroutine_id",
      "stack_id",
      "stack",
      "pid",
    ]);
    assert.equal(parsed[3].time, "2026-11-27T06:12:59Z");
    assert.deepEqual(parsed[4], {
      time: "2026-11-27T06:12:58.99Z",
      level: "INFO",
      msg: "runtime.newproc1",
      goroutine_id: 7,
      stack_id: 3,
    });
  });
}
