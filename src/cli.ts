/**
 * gmon's command line, parsed exactly as Go's `flag` package (with `flag.ExitOnError`) would parse it, so
 * that gmon behaves like the Go tools its users know; test/cli_test.ts compares it with a real Go program.
 *
 * @module
 */

import { z } from "zod";
import { formatDuration, quote } from "./log/slog.ts";

/** slog level names accepted by `-level`. */
export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";

/** The four levels, lowest first. */
export const LEVELS: readonly Level[] = ["DEBUG", "INFO", "WARN", "ERROR"];

/** Validated options. */
export interface Options {
  /** Path of the Go executable to trace. */
  path: string;
  /** Only this process, or every process running `path` if null. */
  pid: number | null;
  level: Level;
  /** Port for the inspection endpoint, or null if off. */
  pprofPort: number | null;
  /** Address the endpoint listens on (127.0.0.1 unless widened on purpose). */
  pprofAddr: string;
  /** Nanoseconds between leak reports, or null if off. */
  reportIntervalNs: number | null;
  /** Output format of gmon's lines: Go slog's TextHandler or JSONHandler shape. */
  format: "text" | "json";
  /** File for gmon's lines, or null for the default (stdout; stderr when launching a program). */
  output: string | null;
  /** Launch mode: the program and its arguments (`gmon [flags] -- PROG ARGS`); empty otherwise. */
  args: string[];
  /** Print every goroutine (or the leaked ones) as Go's debug=2 dump does, then exit; null: trace. */
  dump: "goroutine" | "goroutineleak" | null;
  /** How long a goroutine must stay blocked at one place to be judged leaked, ns. */
  leakAfterNs: number;
  /** Host-wide mode: every Go program on the host, those started later too. */
  all: boolean;
  /** In host-wide mode, only executables whose path matches this glob; null: any. */
  exeGlob: string | null;
  /** In host-wide mode, only processes in containers whose id starts with this; null: any process. */
  container: string | null;
}

/** Result of {@link parseArgs}: options, or what a Go program would print before exiting. */
export type ParseOutcome =
  | { kind: "ok"; options: Options }
  | { kind: "version" }
  | { kind: "exit"; status: 0 | 2; stderr: string };

/** Definition of one flag; parsing and the usage text both derive from {@link FLAGS}. */
export interface FlagDef {
  /** Name without dashes. */
  readonly name: string;
  readonly type: "string" | "int" | "duration" | "bool";
  /** Usage text; a `back-quoted` word names the argument, as in Go. */
  readonly usage: string;
  /** Default, in the form Go's `flag.Value.String()` returns it. */
  readonly default: string;
}

/** gmon's flags. */
export const FLAGS: readonly FlagDef[] = [
  {
    name: "path",
    type: "string",
    usage:
      "path to the Go executable to trace (required unless -pid or a program to launch follows the flags)",
    default: "",
  },
  {
    name: "all",
    type: "bool",
    usage: "trace every Go program on the host, in containers too, those started later as well",
    default: "false",
  },
  {
    name: "exe",
    type: "string",
    usage: "with -all, only executables whose path (as their process sees it) matches `glob` (* ? [...])",
    default: "",
  },
  {
    name: "container",
    type: "string",
    usage: "with -all, only processes in a container whose `id` starts with this",
    default: "",
  },
  {
    name: "pid",
    type: "int",
    usage: "trace only this process (default: every process running the executable)",
    default: "0",
  },
  {
    name: "dump",
    type: "string",
    usage: "print the goroutines of the process(es) as Go's debug=2 dump does, then exit; `profile` is " +
      "goroutine (every goroutine, where it is now) or goroutineleak (those judged leaked)",
    default: "",
  },
  {
    name: "leak-after",
    type: "duration",
    usage: "judge a goroutine leaked once blocked on a channel, select or lock at one place this long",
    default: "1m0s",
  },
  { name: "level", type: "string", usage: "log level: DEBUG, INFO, WARN or ERROR", default: "INFO" },
  {
    name: "pprof-port",
    type: "int",
    usage: "serve the inspection endpoint on -pprof-addr's PORT, 1-65535 (default: off)",
    default: "0",
  },
  {
    name: "pprof-addr",
    type: "string",
    usage: "`address` the inspection endpoint listens on; widen it (e.g. 0.0.0.0) only on purpose",
    default: "127.0.0.1",
  },
  {
    name: "format",
    type: "string",
    usage: "format of gmon's lines: text or json (Go slog's handlers)",
    default: "text",
  },
  {
    name: "o",
    type: "string",
    usage: "write gmon's lines to `file` (default: stdout; stderr when launching a program)",
    default: "",
  },
  {
    name: "report-interval",
    type: "duration",
    usage: "log a leak report (top creation sites by live goroutines) this often, e.g. 30s (default: off)",
    default: "0s",
  },
  {
    name: "version",
    type: "bool",
    usage: "print gmon's version and commit, the Deno, V8, libbpf and kernel it runs on, and exit",
    default: "false",
  },
];

const FLAG_BY_NAME: ReadonlyMap<string, FlagDef> = new Map(FLAGS.map((f) => [f.name, f]));

/** Go's `flag.UnquoteUsage`. */
function unquoteUsage(f: FlagDef): [name: string, usage: string] {
  const i = f.usage.indexOf("`");
  if (i >= 0) {
    const j = f.usage.indexOf("`", i + 1);
    if (j >= 0) {
      const name = f.usage.slice(i + 1, j);
      return [name, f.usage.slice(0, i) + name + f.usage.slice(j + 1)];
    }
  }
  // Go names no argument for a boolean flag.
  return [f.type === "bool" ? "" : f.type, f.usage];
}

/** The usage message, as Go's default `Usage` of a FlagSet named "gmon" prints it. */
export function usage(): string {
  let out = "Usage of gmon:\n";
  const sorted = [...FLAGS].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of sorted) {
    const [name, text] = unquoteUsage(f);
    let line = "  -" + f.name;
    if (name.length > 0) line += " " + name;
    // Go keeps one-letter boolean flags on one line; four bytes is "  -x".
    line += line.length <= 4 ? "\t" : "\n    \t";
    line += text.replaceAll("\n", "\n    \t");
    const zero = { string: "", int: "0", duration: "0s", bool: "false" }[f.type];
    if (f.default !== zero) {
      line += f.type === "string" ? ` (default ${quote(f.default)})` : ` (default ${f.default})`;
    }
    out += line + "\n";
  }
  return out;
}

/** Why a Go `strconv.ParseInt(s, 0, 64)` failed, in the words of the flag package. */
type IntError = "parse error" | "value out of range";

/** Go's underscoreOK: underscores only between digits (a base prefix counts as a digit). */
function underscoreOK(s: string): boolean {
  let saw = "^";
  let i = 0;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && "bBoOxX".includes(s[1])) {
    i = 2;
    saw = "0";
    hex = s[1] === "x" || s[1] === "X";
  }
  for (; i < s.length; i++) {
    const c = s[i];
    if ((c >= "0" && c <= "9") || (hex && /^[a-fA-F]$/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

const UINT64_MAX = 2n ** 64n - 1n;

/** Go's `strconv.ParseInt(s, 0, 64)`; errors are reported as the flag package words them. */
export function parseGoInt(s: string): bigint | IntError {
  if (s === "") return "parse error";
  let neg = false;
  if (s[0] === "+" || s[0] === "-") {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  // ParseUint from here on, with base 0.
  if (s === "") return "parse error";
  const body = s;
  let base = 10;
  if (s[0] === "0") {
    const p = s.length >= 3 ? s[1].toLowerCase() : "";
    if (p === "b") [base, s] = [2, s.slice(2)];
    else if (p === "o") [base, s] = [8, s.slice(2)];
    else if (p === "x") [base, s] = [16, s.slice(2)];
    else [base, s] = [8, s.slice(1)];
  }
  let underscores = false;
  let n = 0n;
  let overflow = false;
  const b = BigInt(base);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c === 0x5f) {
      underscores = true;
      continue;
    } else if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) d = (c | 0x20) - 0x61 + 10;
    else return "parse error";
    if (d >= base) return "parse error";
    // Go stops at the first overflow and reports the range error without looking further, so a later
    // syntax error goes unnoticed.
    n = n * b + BigInt(d);
    if (n > UINT64_MAX) {
      overflow = true;
      break;
    }
  }
  if (!overflow && underscores && !underscoreOK(body)) return "parse error";
  if (overflow) return "value out of range";
  if (!neg && n >= 2n ** 63n) return "value out of range";
  if (neg && n > 2n ** 63n) return "value out of range";
  return neg ? -n : n;
}

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1_000n],
  ["\u00b5s", 1_000n], // micro sign
  ["\u03bcs", 1_000n], // Greek mu
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
]);
const TWO63 = 2n ** 63n;

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

/** Go's `time.ParseDuration`: nanoseconds, or null where Go returns an error. */
export function parseGoDuration(s: string): bigint | null {
  let d = 0n;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return null;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) return null;
    // leadingInt: [0-9]*, failing past 2^63.
    let i = 0;
    let v = 0n;
    for (; i < s.length && isDigit(s[i]); i++) {
      if (v > TWO63 / 10n) return null;
      v = v * 10n + BigInt(s.charCodeAt(i) - 0x30);
      if (v > TWO63) return null;
    }
    const pre = i > 0;
    s = s.slice(i);
    // leadingFraction: (\.[0-9]*)?, digits past int64 ignored.
    let f = 0n;
    let scale = 1;
    let post = false;
    if (s !== "" && s[0] === ".") {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      for (; j < s.length && isDigit(s[j]); j++) {
        if (overflow) continue;
        if (f > (TWO63 - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const y = f * 10n + BigInt(s.charCodeAt(j) - 0x30);
        if (y > TWO63) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) return null;
    let k = 0;
    while (k < s.length && s[k] !== "." && !isDigit(s[k])) k++;
    if (k === 0) return null;
    const unit = UNITS.get(s.slice(0, k));
    s = s.slice(k);
    if (unit === undefined) return null;
    if (v > TWO63 / unit) return null;
    v *= unit;
    if (f > 0n) {
      // As Go: float64 arithmetic, truncated.
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > TWO63) return null;
    }
    d += v;
    if (d > TWO63) return null;
  }
  if (neg) return -d;
  if (d > TWO63 - 1n) return null;
  return d;
}

/** Go's `strconv.ParseBool`: null where Go returns an error. */
function parseGoBool(s: string): boolean | null {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return null;
}

/** Flag values after Go-style parsing, before gmon's own validation. */
export interface RawFlags {
  /** Every flag's value in the form Go's `flag.Value.String()` returns it. */
  values: Record<string, string>;
  /** Names of the flags that were given, in the order last seen. */
  set: string[];
  args: string[];
}

/** Result of {@link parseFlags}. */
export type FlagsOutcome = { kind: "ok"; flags: RawFlags } | { kind: "exit"; status: 0 | 2; stderr: string };

function fail(msg: string): FlagsOutcome {
  return { kind: "exit", status: 2, stderr: msg + "\n" + usage() };
}

/** Go's `FlagSet.Parse` with ExitOnError over {@link FLAGS}, without gmon's semantic checks. */
export function parseFlags(argv: readonly string[]): FlagsOutcome {
  const values: Record<string, string> = {};
  for (const f of FLAGS) values[f.name] = f.default;
  const set = new Set<string>();
  let i = 0;
  while (i < argv.length) {
    const s = argv[i];
    if (s.length < 2 || s[0] !== "-") break;
    let minuses = 1;
    if (s[1] === "-") {
      minuses = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(minuses);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") return fail(`bad flag syntax: ${s}`);
    i++;
    let value: string | undefined;
    const eq = name.indexOf("=", 1);
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const flag = FLAG_BY_NAME.get(name);
    if (flag === undefined) {
      if (name === "help" || name === "h") return { kind: "exit", status: 0, stderr: usage() };
      return fail(`flag provided but not defined: -${name}`);
    }
    if (flag.type === "bool") {
      // A boolean flag takes no separate argument: `-version`, or `-version=false`.
      const b = value === undefined ? true : parseGoBool(value);
      if (b === null) return fail(`invalid boolean value ${quote(value!)} for -${name}: parse error`);
      values[name] = String(b);
      set.delete(name);
      set.add(name);
      continue;
    }
    if (value === undefined) {
      if (i >= argv.length) return fail(`flag needs an argument: -${name}`);
      value = argv[i++];
    }
    if (flag.type === "int") {
      const n = parseGoInt(value);
      if (typeof n === "string") return fail(`invalid value ${quote(value)} for flag -${name}: ${n}`);
      values[name] = n.toString();
    } else if (flag.type === "duration") {
      const d = parseGoDuration(value);
      if (d === null) return fail(`invalid value ${quote(value)} for flag -${name}: parse error`);
      values[name] = formatDuration(d);
    } else {
      values[name] = value;
    }
    set.delete(name);
    set.add(name);
  }
  return { kind: "ok", flags: { values, set: [...set], args: argv.slice(i) } };
}

const PID_MAX = 2 ** 31 - 1; // pid_t is a signed 32-bit integer

/** gmon's semantic rules for the parsed flags; messages are printed like flag errors. */
export const OptionsSchema = z.object({
  path: z.string(),
  pid: z.bigint().nullable().refine((v) => v === null || (v >= 1n && v <= BigInt(PID_MAX)), {
    error: (iss) => `invalid -pid ${String(iss.input)}: must be a process ID between 1 and ${PID_MAX}`,
  }).transform((v) => (v === null ? null : Number(v))),
  level: z.string().transform((s, ctx) => {
    const up = s.toUpperCase();
    if ((LEVELS as readonly string[]).includes(up)) return up as Level;
    ctx.issues.push({
      code: "custom",
      input: s,
      message: `invalid -level ${quote(s)}: must be DEBUG, INFO, WARN or ERROR`,
    });
    return z.NEVER;
  }),
  pprofPort: z.bigint().refine((v) => v >= 0n && v <= 65535n, {
    error: (iss) => `invalid -pprof-port ${String(iss.input)}: must be between 1 and 65535 (0 is off)`,
  }).transform((v) => (v === 0n ? null : Number(v))),
  pprofAddr: z.string().min(1, { error: 'invalid -pprof-addr "": must be an address, e.g. 127.0.0.1' }),
  reportIntervalNs: z.bigint().refine((v) => v >= 0n, {
    error: (iss) => `invalid -report-interval ${formatDuration(iss.input as bigint)}: must not be negative`,
  }).transform((v) => (v === 0n ? null : Number(v))),
  format: z.enum(["text", "json"], {
    error: (iss) => `invalid -format ${quote(String(iss.input))}: must be text or json`,
  }),
  output: z.string().transform((s) => (s === "" ? null : s)),
  args: z.array(z.string()),
  dump: z.enum(["", "goroutine", "goroutineleak"], {
    error: (iss) => `invalid -dump ${quote(String(iss.input))}: must be goroutine or goroutineleak`,
  }).transform((v) => (v === "" ? null : v)),
  leakAfterNs: z.bigint().refine((v) => v > 0n, {
    error: (iss) => `invalid -leak-after ${formatDuration(iss.input as bigint)}: must be positive`,
  }).transform((v) => Number(v)),
  all: z.boolean(),
  exeGlob: z.string().transform((s) => (s === "" ? null : s)),
  container: z.string().regex(/^[0-9a-f]*$/, {
    error: (iss) =>
      `invalid -container ${quote(String(iss.input))}: must be a container id (hex) or its start`,
  }).transform((s) => (s === "" ? null : s)),
}).refine((o) => o.all || o.path !== "" || o.pid !== null || o.args.length > 0, {
  error: "-path is required",
})
  .refine((o) => !o.all || (o.path === "" && o.pid === null && o.args.length === 0), {
    error: "-all traces every Go program: it takes no -path, -pid or program to launch",
  })
  .refine((o) => o.all || (o.exeGlob === null && o.container === null), {
    error: "-exe and -container choose among the programs -all finds: they need -all",
  })
  .refine((o) => o.pid === null || o.args.length === 0, {
    error: "-pid and a program to launch exclude each other: gmon traces the program it starts",
  })
  .refine((o) => o.dump === null || !o.all, {
    error: "-dump reads the processes of one executable (-pid or -path); with -all, the endpoint's " +
      "/debug/pprof/goroutine?debug=2 dumps them all",
  })
  .refine((o) => o.dump === null || o.args.length === 0, {
    error: "-dump reads running processes: it takes -pid or -path, not a program to launch",
  });

/**
 * Parses gmon's command line (without the program name). Pure: the caller prints `stderr` and exits
 * with `status` for an "exit" outcome.
 */
export function parseArgs(argv: readonly string[]): ParseOutcome {
  const parsed = parseFlags(argv);
  if (parsed.kind === "exit") return parsed;
  const { values, set, args } = parsed.flags;
  // As a Go program checks its -version flag: right after parsing, before anything else is validated.
  if (values["version"] === "true") return { kind: "version" };
  const result = OptionsSchema.safeParse({
    path: values["path"],
    // An explicit -pid 0 is rejected rather than silently meaning "every process".
    pid: set.includes("pid") ? BigInt(values["pid"]) : null,
    level: values["level"],
    pprofPort: BigInt(values["pprof-port"]),
    pprofAddr: values["pprof-addr"],
    reportIntervalNs: parseGoDuration(values["report-interval"]),
    format: values["format"],
    output: values["o"],
    args,
    dump: values["dump"],
    leakAfterNs: parseGoDuration(values["leak-after"]),
    all: values["all"] === "true",
    exeGlob: values["exe"],
    container: values["container"],
  });
  if (!result.success) {
    const msg = result.error.issues[0]?.message ?? "invalid arguments";
    return { kind: "exit", status: 2, stderr: msg + "\n" + usage() };
  }
  return { kind: "ok", options: result.data };
}
