/**
 * gmon's leak verdicts against Go's own goroutine-leak corpus (Go >= 1.26:
 * runtime/testdata/testgoroutineleakprofile, with the GoKer real-world bugs). The corpus is built as
 * ordinary binaries (no GOEXPERIMENT); where a case would write its goroutineleak profile it holds
 * instead, and `gmon -pid N -dump goroutineleak` reads it from outside. Each case runs as
 * runtime/goroutineleakprofile_test.go runs it (GODEBUG=asyncpreemptoff=1, GOMAXPROCS=1 for the simple
 * ones, repeated), leaks are extracted as that test extracts them and checked against its expected
 * leaks (regular expressions, read from the test file itself).
 */
import { assert, assertEquals } from "./assert.ts";
import { runGmon } from "./harness.ts";

const decoder = new TextDecoder();
/** Runs of each case, as the corpus test runs them in -short mode (repetitions | 1). */
const REPETITIONS = 3;
/** Cases whose blocked goroutines stay reachable through other goroutines (Go says: not leaked); gmon sees only what globals hold. */
const REACHABLE = new Set(["DaisyChain"]);
const PARALLEL = 6;
const LEAK_AFTER = "1s";

interface Case {
  name: string;
  dir: "." | "goker";
  simple: boolean;
  expected: RegExp[];
  flaky: RegExp[];
}

const goroot = decoder.decode(new Deno.Command("go", { args: ["env", "GOROOT"] }).outputSync().stdout).trim();
const corpus = `${goroot}/src/runtime/testdata/testgoroutineleakprofile`;
const testFile = `${goroot}/src/runtime/goroutineleakprofile_test.go`;
const available = (() => {
  try {
    return Deno.statSync(corpus).isDirectory && Deno.statSync(testFile).isFile;
  } catch {
    return false;
  }
})();

/** The cases and their expected leaks, read from goroutineleakprofile_test.go's makeTest calls. */
export function parseCases(source: string): Case[] {
  const gokerAt = source.indexOf("gokerTestCases :=");
  const out: Case[] = [];
  const call = /^\s*(makeTest|makeFlakyTest)\("(\w+)",?((?:\s*(?:`[^`]*`,?|\/\/[^\n]*))*)\s*\)/gm;
  for (const m of source.matchAll(call)) {
    const regexes = [...m[3].matchAll(/`([^`]*)`/g)].map((r) => new RegExp(r[1]));
    const flaky = m[1] === "makeFlakyTest";
    out.push({
      name: m[2],
      dir: m.index! > gokerAt ? "goker" : ".",
      simple: !flaky,
      expected: flaky ? [] : regexes,
      flaky: flaky ? regexes : [],
    });
  }
  return out;
}

/** A copy of a corpus directory that holds where it would write its profile, built. */
function buildCorpus(dir: "." | "goker"): string {
  const src = Deno.makeTempDirSync({ prefix: "gmon-leakcorpus-" });
  for (const e of Deno.readDirSync(`${corpus}/${dir}`)) {
    if (!e.isFile || !e.name.endsWith(".go")) continue;
    const text = Deno.readTextFileSync(`${corpus}/${dir}/${e.name}`)
      .replaceAll("prof.WriteTo(os.Stdout, 2)", "gmonHold(prof, os.Stdout, 2)")
      .replaceAll("prof.WriteTo(io.Discard, 2)", "_, _ = prof, io.Discard");
    Deno.writeTextFileSync(`${src}/${e.name}`, text);
  }
  Deno.writeTextFileSync(
    `${src}/gmonhold.go`,
    `package main

import (
	"io"
	"os"
	"runtime/pprof"
)

// gmonHold stands where the case writes its goroutine leak profile: it says so and waits for stdin
// to close, so that gmon reads the goroutines the profile would have shown.
func gmonHold(_ *pprof.Profile, _ io.Writer, _ int) {
	os.Stdout.WriteString("gmon-hold\\n")
	var b [1]byte
	os.Stdin.Read(b[:])
}
`,
  );
  Deno.writeTextFileSync(`${src}/go.mod`, "module leakcorpus\n\ngo 1.26\n");
  const r = new Deno.Command("go", { args: ["build", "-o", `${src}/corpus`, "."], cwd: src }).outputSync();
  assert(r.code === 0, `building the corpus (${dir}): ${decoder.decode(r.stderr)}`);
  return `${src}/corpus`;
}

/** Go's extractLeaks: "func() [wait reason]:" of each goroutine marked (leaked). */
export function extractLeaks(output: string): string[] {
  const leaks: string[] = [];
  for (const stack of output.split("\n\ngoroutine")) {
    const lines = stack.split("\n");
    if (lines.length < 5 || !lines[0].includes("(leaked)")) continue;
    const waitReason = lines[0].replace(/goroutine \d+ \[/, "[").replace(/^\s*\d+ \[/, "[").replaceAll(
      " (leaked)",
      "",
    );
    let funcName = "";
    for (let i = lines.length - 1; i >= 0; i--) {
      if (lines[i].includes("created by")) {
        funcName = lines[i - 2].replace(/^main\./, "");
        break;
      }
    }
    assert(funcName !== "", `no function in ${lines.join("\n")}`);
    leaks.push(funcName + " " + waitReason);
  }
  return leaks;
}

/** One run of a case: its goroutines judged by gmon once it holds. */
async function runCase(bin: string, c: Case): Promise<string> {
  const env: Record<string, string> = { GODEBUG: "asyncpreemptoff=1" };
  if (c.simple) env.GOMAXPROCS = "1";
  const child = new Deno.Command(bin, {
    args: [c.name],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  })
    .spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("gmon-hold\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${c.name} ended before holding: ${seen}`);
      seen += value;
    }
    reader.releaseLock();
    const r = await runGmon(["-pid", String(child.pid), "-dump", "goroutineleak", "-leak-after", LEAK_AFTER]);
    assertEquals([r.code, r.stderr], [0, ""], c.name);
    return r.stdout;
  } finally {
    await child.stdin.close().catch(() => {});
    await child.stdout.cancel().catch(() => {});
    await child.status;
  }
}

interface Outcome {
  name: string;
  expected: number;
  found: number;
  missing: string[];
  unexpected: string[];
}

/** Runs a case REPETITIONS times and judges the union of its outputs as the corpus test does. */
async function judge(bin: string, c: Case): Promise<Outcome> {
  let output = "";
  for (let i = 0; i < REPETITIONS; i++) output += (await runCase(bin, c)) + "\n\n";
  const leaks = extractLeaks(output);
  const found = new Set<RegExp>();
  const unexpected: string[] = [];
  for (const leak of leaks) {
    const hit = c.expected.find((re) => re.test(leak));
    if (hit !== undefined) found.add(hit);
    else if (!c.flaky.some((re) => re.test(leak))) unexpected.push(leak);
  }
  const missing = c.expected.filter((re) => !found.has(re)).map(String);
  return { name: c.name, expected: c.expected.length, found: found.size, missing, unexpected };
}

async function inParallel<T, R>(items: T[], n: number, each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await each(items[i]);
    }
  }));
  return out;
}

Deno.test({
  name: "leak corpus: gmon -dump goroutineleak finds Go's expected leaks",
  ignore: !available,
  fn: async () => {
    const cases = parseCases(Deno.readTextFileSync(testFile));
    assert(cases.length > 60, `read ${cases.length} cases`);
    const bins = { ".": buildCorpus("."), "goker": buildCorpus("goker") };
    const outcomes = await inParallel(cases, PARALLEL, (c) => judge(bins[c.dir], c));
    const full = outcomes.filter((o) => o.missing.length === 0);
    const expected = outcomes.reduce((n, o) => n + o.expected, 0);
    const found = outcomes.reduce((n, o) => n + o.found, 0);
    const withUnexpected = outcomes.filter((o) => o.unexpected.length > 0);
    console.log(
      `\nleak corpus (${cases.length} cases, ${REPETITIONS} runs each, -leak-after ${LEAK_AFTER}):\n` +
        `  cases fully found: ${full.length}/${cases.length}\n` +
        `  expected leaks found: ${found}/${expected}\n` +
        `  cases with unexpected leaks: ${withUnexpected.length} (${
          withUnexpected.map((o) => o.name).join(", ")
        })`,
    );
    for (const o of outcomes) {
      if (o.missing.length > 0) console.log(`  ${o.name}: missing ${o.missing.join(", ")}`);
      if (o.unexpected.length > 0) {
        console.log(`  ${o.name}: unexpected ${[...new Set(o.unexpected)].slice(0, 4).join(" | ")}`);
      }
    }
    assertEquals(outcomes.flatMap((o) => o.missing.map((m) => `${o.name}: ${m}`)), []);
    assertEquals(withUnexpected.map((o) => o.name).filter((n) => !REACHABLE.has(n)), []);
  },
});
