/**
 * The endpoint end to end with real eBPF: a fixture leaks K goroutines at one site and churns others;
 * go tool pprof, promtool and /goroutines must see exactly the leak, and nothing once it is released.
 */
import { assert, assertEquals } from "./assert.ts";
import type { GoroutineJson } from "../src/endpoint/json.ts";
import { attrs, buildFixture, Gmon, leftovers, runGmon } from "./harness.ts";
import { checkMetrics, get, metric, pprofTraces } from "./endpoint_util.ts";
import { freePort, Leaker, until } from "./leaker.ts";

/** A row of /goroutines. */
type Live = GoroutineJson;

const K = 25;
const CHURN = 60;

/**
 * gmon's programs and links in the kernel that weren't there before `before` was taken (other gmon
 * runs on the same machine may hold their own).
 */
function newLeftovers(before: ReadonlySet<string>): string[] {
  return leftovers().filter((l) => !before.has(l));
}

Deno.test("e2e endpoint: pprof, metrics, JSON and the leak report see exactly the leak, then nothing", async () => {
  const bin = buildFixture("leaker");
  const before = new Set(leftovers());
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const gmon = new Gmon(["-path", bin, "-pprof-port", String(port), "-report-interval", "300ms"]);
  let leaker: Leaker | undefined;
  try {
    await gmon.attached();
    leaker = new Leaker(bin, K, CHURN);
    const pid = leaker.child.pid;
    await leaker.expect("ready");
    await leaker.send("leak", "leaked");

    const live = async () => (await (await get(`${base}/goroutines`)).json()) as Live[];
    const atSite = (all: Live[], site: string) => all.filter((g) => g.pid === pid && g.site === site);
    await until(`${K} live at main.leak, none at main.churn`, async () => {
      const all = await live();
      return atSite(all, "main.leak").length === K && atSite(all, "main.churn").length === 0;
    });
    const leaked = atSite(await live(), "main.leak");
    for (const g of leaked) {
      assert(g.stack[0].startsWith("runtime.newproc at "), g.stack[0]);
      assert(/^main\.leak at .*\/leaker\/main\.go:\d+$/.test(g.stack[1]), g.stack[1]);
      assert(g.age_seconds >= 0 && g.age_seconds < 60, String(g.age_seconds));
      assert(Math.abs(Date.parse(g.created_at!) - Date.now()) < 60_000, String(g.created_at));
      assertEquals([g.preexisting, g.status, g.wait_reason, g.leaked], [
        false,
        "chan receive",
        "chan receive",
        false,
      ]);
      assert(
        g.current_stack!.some((f) => /^main\.wait at .*\/leaker\/main\.go:\d+$/.test(f)),
        String(g.current_stack),
      );
      assertEquals(g.waiting_for.length, 1);
    }

    // Where they are now: Go's own profile shape, read from the process.
    const now = await pprofTraces(`${base}/debug/pprof/goroutine`);
    const waiting = now.filter((t) => t.frames.includes("main.wait"));
    assertEquals(waiting.map((t) => [t.count, t.pid, t.frames[0]]), [[K, String(pid), "runtime.gopark"]]);
    const nowDump = await (await get(`${base}/debug/pprof/goroutine?debug=2`)).text();
    assertEquals(nowDump.split(/\]:\nmain\.wait\(\)\n/).length - 1, K, nowDump);
    assert(
      /^goroutine \d+ \[chan receive\]:\nmain\.wait\(\)\n\t.*\/leaker\/main\.go:\d+ \+0x[0-9a-f]+\ncreated by main\.leak in goroutine 1\n/m
        .test(nowDump),
      nowDump,
    );
    // Blocked on a channel that a global holds: not leaked, as Go's leak profile judges it too.
    assertEquals(
      (await (await get(`${base}/debug/pprof/goroutineleak?debug=1`)).text()).split("\n")[0],
      "goroutineleak profile: total 0",
    );

    // go tool pprof reads the profile straight from the endpoint.
    const traces = await pprofTraces(`${base}/debug/pprof/goroutinecreated`);
    const leakTraces = traces.filter((t) => t.frames[0] === "main.leak");
    assertEquals(leakTraces.map((t) => [t.count, t.pid, t.frames.slice(0, 2)]), [[K, String(pid), [
      "main.leak",
      "main.main",
    ]]]);
    assert(!traces.some((t) => t.frames[0] === "main.churn"), "the churned goroutines are gone");

    const debug1 = await (await get(`${base}/debug/pprof/goroutinecreated?debug=1`)).text();
    assert(debug1.startsWith("goroutine profile: total "), debug1);
    assert(
      new RegExp(
        `^${K} @( 0x[0-9a-f]+)+\\n# labels: \\{"pid":"${pid}"\\}\\n#\\t0x[0-9a-f]+\\tmain\\.leak\\t`,
        "m",
      ).test(debug1),
      debug1,
    );
    const debug2 = await (await get(`${base}/debug/pprof/goroutinecreated?debug=2`)).text();
    assertEquals(debug2.split("\ncreated by main.leak\n").length - 1, K);

    const metrics = await (await get(`${base}/metrics`)).text();
    await checkMetrics(metrics);
    assertEquals(metric(metrics, "gmon_goroutines_live", pid, "main.leak"), K);
    assertEquals(metric(metrics, "gmon_goroutines_created_total", pid, "main.churn"), CHURN);
    assertEquals(metric(metrics, "gmon_goroutines_exited_total", pid, "main.churn"), CHURN);
    assertEquals(metric(metrics, "gmon_goroutine_lifetime_seconds_count", pid, "main.churn"), CHURN);

    await gmon.waitFor((l) => {
      const a = attrs(l);
      return a.get("msg") === "leak report" && a.get("site") === "main.leak" && a.get("live") === String(K);
    }, "a leak report naming main.leak");

    // Released: every count of the two sites goes back to 0.
    await leaker.send("release", "released");
    await until("nothing live at main.leak", async () => atSite(await live(), "main.leak").length === 0);
    const after = await pprofTraces(`${base}/debug/pprof/goroutinecreated`);
    assert(
      !after.some((t) => t.frames[0] === "main.leak" || t.frames[0] === "main.churn"),
      JSON.stringify(after),
    );
    const metrics2 = await (await get(`${base}/metrics`)).text();
    await checkMetrics(metrics2);
    assertEquals(metric(metrics2, "gmon_goroutines_live", pid, "main.leak"), 0);
    assertEquals(metric(metrics2, "gmon_goroutines_live", pid, "main.churn"), 0);
    assertEquals(metric(metrics2, "gmon_goroutines_exited_total", pid, "main.leak"), K);
    assertEquals(metric(metrics2, "gmon_goroutine_lifetime_seconds_count", pid, "main.leak"), K);

    // The exits of the leaked goroutines name their creation stack and lifetime.
    for (const g of leaked) {
      const exit = await gmon.waitFor(
        (l) => l.includes(` msg=runtime.goexit1 goroutine_id=${g.id} `) && l.endsWith(` pid=${pid}`),
        `exit of ${g.id}`,
      );
      const a = attrs(exit);
      assertEquals(a.get("created_stack_id"), String(g.stack_id));
      assert(/^\d+(\.\d+)?(ns|µs|ms|s)$|^\d+m/.test(a.get("lifetime")!), exit);
      assert(exit.indexOf(" created_stack_id=") > exit.indexOf(" stack.0="), exit);
    }

    await leaker.quit();
    assertEquals(await gmon.stop(), 0);
    const detached = gmon.lines.findIndex((l) => l.includes(" msg=detached "));
    assertEquals(detached, gmon.lines.length - 1);
    assert(gmon.lines[detached - 1].includes('msg="leak report"'), gmon.lines[detached - 1]);
    assertEquals(gmon.stderr, "");
    // The endpoint is gone with gmon.
    await fetch(`${base}/metrics`).then((r) => r.body?.cancel()).then(
      () => assert(false, "still serving"),
      () => {},
    );
  } finally {
    await leaker?.quit();
    await gmon.stop("SIGKILL");
  }
  assertEquals(newLeftovers(before), []);
});

Deno.test("e2e endpoint: a port in use is one error line, status 1, nothing attached", async () => {
  const bin = buildFixture("leaker");
  const before = new Set(leftovers());
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await runGmon(["-path", bin, "-pprof-port", String(port)]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith(`gmon: serve the endpoint on 127.0.0.1:${port}: `), lines[0]);
    assertEquals(newLeftovers(before), []);
  } finally {
    busy.close();
  }
});
