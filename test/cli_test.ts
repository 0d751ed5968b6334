import assert from "node:assert/strict";
import { FLAGS, type Options, parseArgs, parseFlags, parseGoInt, usage } from "../src/cli.ts";
import { buildGoRef, removeGoRef, runGoRef } from "./goref.ts";

/** gmon's verdict for a command line with -version set: print the version line and exit. */
const VERSION = { kind: "version" } as const;

/**
 * One command line. The flag-level outcome always comes from the Go reference program; `want` is gmon's
 * own semantic verdict for command lines Go's flag package accepts: the options, {@link VERSION}, or the
 * error message.
 */
interface Case {
  argv: string[];
  want?: Options | typeof VERSION | string;
}

const base: Options = {
  path: "/bin/app",
  pid: null,
  level: "INFO",
  pprofPort: null,
  pprofAddr: "127.0.0.1",
  reportIntervalNs: null,
  format: "text",
  output: null,
  args: [],
  dump: null,
  leakAfterNs: 60e9,
  all: false,
  exeGlob: null,
  container: null,
};
const ok = (o: Partial<Options>): Options => ({ ...base, ...o });
const P = ["-path", "/bin/app"];

const CASES: Case[] = [
  // Syntax variants and accepted values.
  { argv: P, want: base },
  { argv: ["-path=/bin/app"], want: base },
  { argv: ["--path", "/bin/app"], want: base },
  { argv: ["--path=/bin/app"], want: base },
  { argv: ["-path=a=b"], want: ok({ path: "a=b" }) },
  { argv: ["-path", "-pid"], want: ok({ path: "-pid" }) },
  { argv: ["-path", "é \n"], want: ok({ path: "é \n" }) },
  { argv: [...P, "-pid", "42"], want: ok({ pid: 42 }) },
  { argv: [...P, "-pid=42"], want: ok({ pid: 42 }) },
  { argv: [...P, "--pid=0x1F"], want: ok({ pid: 31 }) },
  { argv: [...P, "-pid", "0X1f"], want: ok({ pid: 31 }) },
  { argv: [...P, "-pid", "0o17"], want: ok({ pid: 15 }) },
  { argv: [...P, "-pid", "0O17"], want: ok({ pid: 15 }) },
  { argv: [...P, "-pid", "017"], want: ok({ pid: 15 }) },
  { argv: [...P, "-pid", "0b101"], want: ok({ pid: 5 }) },
  { argv: [...P, "-pid", "0B101"], want: ok({ pid: 5 }) },
  { argv: [...P, "-pid", "1_000"], want: ok({ pid: 1000 }) },
  { argv: [...P, "-pid", "0x_1F"], want: ok({ pid: 31 }) },
  { argv: [...P, "-pid", "0_17"], want: ok({ pid: 15 }) },
  { argv: [...P, "-pid", "+7"], want: ok({ pid: 7 }) },
  { argv: [...P, "-pid", "2147483647"], want: ok({ pid: 2147483647 }) },
  { argv: ["-path", "a", "-path", "b", "-pid", "1", "-pid", "2"], want: ok({ path: "b", pid: 2 }) },
  { argv: [...P, "-level", "debug"], want: ok({ level: "DEBUG" }) },
  { argv: [...P, "-level=Warn"], want: ok({ level: "WARN" }) },
  { argv: [...P, "-level", "error"], want: ok({ level: "ERROR" }) },
  { argv: [...P, "-level", "INFO"], want: base },
  // slog.Level.UnmarshalText upper-cases with Unicode rules, so the dotless i works there too.
  { argv: [...P, "-level", "ınfo"], want: base },
  { argv: [...P, "-pprof-port", "8080"], want: ok({ pprofPort: 8080 }) },
  { argv: [...P, "--pprof-port=65535"], want: ok({ pprofPort: 65535 }) },
  { argv: [...P, "-pprof-port", "0"], want: base },
  { argv: [...P, "-pprof-addr", "0.0.0.0"], want: ok({ pprofAddr: "0.0.0.0" }) },
  { argv: [...P, "-pprof-addr=::1", "-pprof-port=6060"], want: ok({ pprofAddr: "::1", pprofPort: 6060 }) },
  { argv: [...P, "-report-interval", "30s"], want: ok({ reportIntervalNs: 30e9 }) },
  { argv: [...P, "-report-interval=1m30.5s"], want: ok({ reportIntervalNs: 90.5e9 }) },
  { argv: [...P, "-report-interval", "1.5h"], want: ok({ reportIntervalNs: 5400e9 }) },
  { argv: [...P, "-report-interval", "250ms"], want: ok({ reportIntervalNs: 250e6 }) },
  { argv: [...P, "-report-interval", "1\u00b5s"], want: ok({ reportIntervalNs: 1000 }) },
  { argv: [...P, "-report-interval", "1\u03bcs"], want: ok({ reportIntervalNs: 1000 }) },
  { argv: [...P, "-report-interval", ".5s"], want: ok({ reportIntervalNs: 500e6 }) },
  { argv: [...P, "-report-interval", "+2s3ms"], want: ok({ reportIntervalNs: 2003e6 }) },
  { argv: [...P, "-report-interval", "0"], want: base },
  { argv: [...P, "-report-interval", "-0"], want: base },
  { argv: [...P, "-report-interval", "0s"], want: base },
  { argv: [...P, "-report-interval", "1.0000000001s"], want: ok({ reportIntervalNs: 1e9 }) },
  {
    argv: [...P, "-report-interval", "2562047h47m16.854775807s"],
    want: ok({ reportIntervalNs: 9223372036854775807 }),
  },
  { argv: [...P, "-pprof-addr", ""], want: 'invalid -pprof-addr "": must be an address, e.g. 127.0.0.1' },
  { argv: [...P, "-report-interval", "-1s"], want: "invalid -report-interval -1s: must not be negative" },
  {
    argv: [...P, "-report-interval", "-1.5m"],
    want: "invalid -report-interval -1m30s: must not be negative",
  },
  // Semantic errors.
  { argv: [], want: "-path is required" },
  { argv: ["-all"], want: ok({ path: "", all: true }) },
  {
    argv: ["-all", "-exe", "/srv/*", "-container", "4f2a"],
    want: ok({ path: "", all: true, exeGlob: "/srv/*", container: "4f2a" }),
  },
  {
    argv: ["-all", ...P],
    want: "-all traces every Go program: it takes no -path, -pid or program to launch",
  },
  {
    argv: ["-all", "-pid", "7"],
    want: "-all traces every Go program: it takes no -path, -pid or program to launch",
  },
  {
    argv: ["-all", "--", "/bin/app"],
    want: "-all traces every Go program: it takes no -path, -pid or program to launch",
  },
  {
    argv: [...P, "-exe", "/srv/*"],
    want: "-exe and -container choose among the programs -all finds: they need -all",
  },
  {
    argv: ["-all", "-container", "xyz"],
    want: 'invalid -container "xyz": must be a container id (hex) or its start',
  },
  { argv: ["-path", ""], want: "-path is required" },
  { argv: ["-path="], want: "-path is required" },
  { argv: [...P, "-pid", "0"], want: "invalid -pid 0: must be a process ID between 1 and 2147483647" },
  { argv: [...P, "-pid", "-5"], want: "invalid -pid -5: must be a process ID between 1 and 2147483647" },
  {
    argv: [...P, "-pid", "2147483648"],
    want: "invalid -pid 2147483648: must be a process ID between 1 and 2147483647",
  },
  {
    argv: [...P, "-pid", "9223372036854775807"],
    want: "invalid -pid 9223372036854775807: must be a process ID between 1 and 2147483647",
  },
  {
    argv: [...P, "-pid", "-9223372036854775808"],
    want: "invalid -pid -9223372036854775808: must be a process ID between 1 and 2147483647",
  },
  {
    argv: [...P, "-pid", "-0x8000000000000000"],
    want: "invalid -pid -9223372036854775808: must be a process ID between 1 and 2147483647",
  },
  {
    argv: [...P, "-pprof-port", "-0x8000000000000000"],
    want: "invalid -pprof-port -9223372036854775808: must be between 1 and 65535 (0 is off)",
  },
  { argv: [...P, "-level", "trace"], want: 'invalid -level "trace": must be DEBUG, INFO, WARN or ERROR' },
  { argv: [...P, "-level", ""], want: 'invalid -level "": must be DEBUG, INFO, WARN or ERROR' },
  { argv: [...P, "-level", "INFO+1"], want: 'invalid -level "INFO+1": must be DEBUG, INFO, WARN or ERROR' },
  { argv: [...P, "-level", "a\tb"], want: 'invalid -level "a\\tb": must be DEBUG, INFO, WARN or ERROR' },
  {
    argv: [...P, "-pprof-port", "65536"],
    want: "invalid -pprof-port 65536: must be between 1 and 65535 (0 is off)",
  },
  {
    argv: [...P, "-pprof-port", "-1"],
    want: "invalid -pprof-port -1: must be between 1 and 65535 (0 is off)",
  },
  // -pid alone names its executable; -dump and -leak-after.
  { argv: ["-pid", "42"], want: ok({ path: "", pid: 42 }) },
  { argv: ["-pid", "42", "-dump", "goroutine"], want: ok({ path: "", pid: 42, dump: "goroutine" }) },
  { argv: [...P, "-dump=goroutineleak"], want: ok({ dump: "goroutineleak" }) },
  { argv: [...P, "-leak-after", "90s"], want: ok({ leakAfterNs: 90e9 }) },
  { argv: [...P, "-leak-after", "1h2m"], want: ok({ leakAfterNs: 3720e9 }) },
  { argv: [...P, "-dump", "heap"], want: 'invalid -dump "heap": must be goroutine or goroutineleak' },
  { argv: [...P, "-leak-after", "0s"], want: "invalid -leak-after 0s: must be positive" },
  { argv: [...P, "-leak-after", "-1m"], want: "invalid -leak-after -1m0s: must be positive" },
  {
    argv: [...P, "-dump", "goroutine", "--", "./app"],
    want: "-dump reads running processes: it takes -pid or -path, not a program to launch",
  },
  // Launch mode: what follows the flags is a program and its arguments.
  { argv: [...P, "foo", "-pid", "3"], want: ok({ args: ["foo", "-pid", "3"] }) },
  { argv: [...P, "-"], want: ok({ args: ["-"] }) },
  { argv: [...P, "--", "-pid", "3"], want: ok({ args: ["-pid", "3"] }) },
  { argv: ["--", "-path", "a"], want: ok({ path: "", args: ["-path", "a"] }) },
  { argv: ["--"], want: "-path is required" },
  {
    argv: ["-pid", "3", "--", "prog"],
    want: "-pid and a program to launch exclude each other: gmon traces the program it starts",
  },
  { argv: ["-level", "bad", "x"], want: 'invalid -level "bad": must be DEBUG, INFO, WARN or ERROR' },
  { argv: [...P, "-format", "json", "-o", "/tmp/x"], want: ok({ format: "json", output: "/tmp/x" }) },
  { argv: [...P, "-format", "yaml"], want: 'invalid -format "yaml": must be text or json' },
  // -version: a boolean flag, acted on before gmon's own checks (no -path needed).
  { argv: ["-version"], want: VERSION },
  { argv: ["--version"], want: VERSION },
  { argv: ["-version=true"], want: VERSION },
  { argv: ["-version=1"], want: VERSION },
  { argv: ["-version=T"], want: VERSION },
  { argv: ["-version", "-pid", "0"], want: VERSION },
  { argv: ["-version", "false"], want: VERSION },
  { argv: [...P, "-version=false"], want: base },
  { argv: [...P, "-version=0", "-version=F"], want: base },
  { argv: ["-version=False"], want: "-path is required" },
  { argv: ["-version=true", "-version=false", ...P], want: base },
  { argv: [...P, "--", "-version"], want: ok({ args: ["-version"] }) },
  { argv: ["-version=yes"] },
  { argv: ["-version="] },
  { argv: ["-version=TRUE ", "-path", "x"] },
  { argv: ["-version", "-bogus"] },
  // Flag-level errors and help: entirely Go's business.
  { argv: ["-path"] },
  { argv: [...P, "-pid"] },
  { argv: ["--pprof-port"] },
  { argv: ["-x"] },
  { argv: ["--x=1"] },
  { argv: ["-H"] },
  { argv: ["-pāth", "x"] },
  { argv: [...P, "-bogus", "1"] },
  { argv: ["---x"] },
  { argv: ["-=x"] },
  { argv: ["--=x"] },
  { argv: ["-="] },
  { argv: ["---"] },
  { argv: ["-h"] },
  { argv: ["-help"] },
  { argv: ["--help"] },
  { argv: ["--h"] },
  { argv: ["-h=1"] },
  { argv: ["-help=false", "x"] },
  { argv: [...P, "-h"] },
  { argv: ["-x", "-h"] },
  { argv: ["-h", "-x"] },
  ...[
    "abc",
    "",
    " 1",
    "1 ",
    "1__0",
    "_10",
    "10_",
    "0x",
    "0x_",
    "0b",
    "0o",
    "0b2",
    "08",
    "09_",
    "1e3",
    "1.0",
    "+",
    "-",
    "+-1",
    "--1",
    "0x1g",
    "é",
    "\x01",
    "\t",
    "\x7f",
    "9223372036854775808",
    "-9223372036854775809",
    "0x8000000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999x",
    "99999999999999999999_9",
    "x99999999999999999999999",
    "0b" + "1".repeat(64),
    "0b" + "1".repeat(65),
    "0x_8000_0000_0000_0000",
  ].flatMap((v) => [{ argv: [...P, "-pid", v] }, { argv: [...P, `-pprof-port=${v}`] }]),
  // Durations Go's time.ParseDuration rejects.
  ...[
    "",
    "1",
    "s",
    ".s",
    "-.s",
    "1.s.",
    "1x",
    "1S",
    "1 s",
    " 1s",
    "1s ",
    "--1s",
    "1e3s",
    "1sm",
    "9223372036854775808ns",
    "2562048h",
    "2562047h47m16.854775808s",
    "9223372036854775807ns1ns",
    "99999999999999999999s",
    "\u00b5s",
    "1\u00b5",
  ].map((v) => ({ argv: [...P, "-report-interval", v] })),
];

Deno.test("parseFlags and parseArgs match Go's flag package", async (t) => {
  const bin = await buildGoRef("flagref");
  const table = JSON.stringify(FLAGS);
  try {
    for (const c of CASES) {
      await t.step(JSON.stringify(c.argv), async () => {
        const go = await runGoRef(bin, c.argv, table);
        const got = parseFlags(c.argv);
        const full = parseArgs(c.argv);
        if (go.stdout === "") {
          assert.deepEqual(got, { kind: "exit", status: go.status, stderr: go.stderr });
          assert.deepEqual(full, got);
          assert.equal(
            c.want,
            undefined,
            "Go rejected a command line the table expects to pass flag parsing",
          );
          return;
        }
        assert.equal(go.status, 0);
        assert.equal(go.stderr, "");
        const ref = JSON.parse(go.stdout) as {
          values: Record<string, string>;
          set: string[];
          args: string[];
        };
        assert.equal(got.kind, "ok");
        if (got.kind !== "ok") return;
        assert.deepEqual(got.flags.values, ref.values);
        assert.deepEqual([...got.flags.set].sort(), ref.set);
        assert.deepEqual(got.flags.args, ref.args);
        assert.notEqual(c.want, undefined, "Go accepted a command line the table expects it to reject");
        if (typeof c.want === "string") {
          assert.deepEqual(full, { kind: "exit", status: 2, stderr: c.want + "\n" + usage() });
        } else if (c.want === VERSION) {
          assert.deepEqual(full, VERSION);
        } else {
          assert.deepEqual(full, { kind: "ok", options: c.want });
        }
      });
    }
  } finally {
    await removeGoRef(bin);
  }
});

Deno.test("usage text", () => {
  assert.equal(
    usage(),
    `Usage of gmon:
  -all
    \ttrace every Go program on the host, in containers too, those started later as well
  -container id
    \twith -all, only processes in a container whose id starts with this
  -dump profile
    \tprint the goroutines of the process(es) as Go's debug=2 dump does, then exit; profile is goroutine (every goroutine, where it is now) or goroutineleak (those judged leaked)
  -exe glob
    \twith -all, only executables whose path (as their process sees it) matches glob (* ? [...])
  -format string
    \tformat of gmon's lines: text or json (Go slog's handlers) (default "text")
  -leak-after duration
    \tjudge a goroutine leaked once blocked on a channel, select or lock at one place this long (default 1m0s)
  -level string
    \tlog level: DEBUG, INFO, WARN or ERROR (default "INFO")
  -o file
    \twrite gmon's lines to file (default: stdout; stderr when launching a program)
  -path string
    \tpath to the Go executable to trace (required unless -pid or a program to launch follows the flags)
  -pid int
    \ttrace only this process (default: every process running the executable)
  -pprof-addr address
    \taddress the inspection endpoint listens on; widen it (e.g. 0.0.0.0) only on purpose (default "127.0.0.1")
  -pprof-port int
    \tserve the inspection endpoint on -pprof-addr's PORT, 1-65535 (default: off)
  -report-interval duration
    \tlog a leak report (top creation sites by live goroutines) this often, e.g. 30s (default: off)
  -version
    \tprint gmon's version and commit, the Deno, V8, libbpf and kernel it runs on, and exit
`,
  );
});

Deno.test("parseGoInt edge cases", () => {
  assert.equal(parseGoInt("0"), 0n);
  assert.equal(parseGoInt("-0"), 0n);
  assert.equal(parseGoInt("0x7fff_ffff_ffff_ffff"), 2n ** 63n - 1n);
  assert.equal(parseGoInt("-9223372036854775808"), -(2n ** 63n));
  assert.equal(parseGoInt("9223372036854775808"), "value out of range");
  assert.equal(parseGoInt("1__2"), "parse error");
});
