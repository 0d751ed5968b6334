/**
 * Attaching to a process that is already leaking: goroutines created before gmon attached must show in
 * every view by their creation site (their go statement, read from g.gopc) — the attached line, the
 * leak report, /metrics, /goroutines, the creation profile — and the leak profile must judge the ones
 * that can never wake, from outside, as Go 1.26's own leak profile would.
 */
import { assert, assertEquals } from "./assert.ts";
import { attrs, buildFixture, Gmon, runGmon } from "./harness.ts";
import { checkMetrics, get, metric, pprofTraces } from "./endpoint_util.ts";
import { freePort, Leaker, until } from "./leaker.ts";
import type { GoroutineJson } from "../src/endpoint/json.ts";

const K = 15;

Deno.test("e2e late attach: goroutines born before gmon are counted at their site and judged", async () => {
  const bin = buildFixture("leaker");
  const leaker = new Leaker(bin, K, 5);
  let gmon: Gmon | undefined;
  try {
    await leaker.expect("ready");
    await leaker.send("leak", "leaked");
    await leaker.send("strand", "stranded");
    const pid = leaker.child.pid;
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    gmon = new Gmon([
      "-pid",
      String(pid),
      "-pprof-port",
      String(port),
      "-report-interval",
      "300ms",
      "-leak-after",
      "1s",
    ]);
    const attached = attrs(await gmon.attached());
    assert(Number(attached.get("goroutines")) >= 2 * K + 1, `attached ${attached.get("goroutines")}`);

    const rows = (await (await get(`${base}/goroutines`)).json()) as GoroutineJson[];
    for (const site of ["main.leak", "main.strand"]) {
      const at = rows.filter((r) => r.site === site);
      assertEquals(at.length, K, site);
      for (const r of at) {
        assertEquals([r.preexisting, r.created_at, r.pid], [true, null, pid]);
        assert(/^main\.(leak|strand) at .*\/leaker\/main\.go:\d+$/.test(r.stack[0]), r.stack[0]);
        assertEquals(r.status, "chan receive");
      }
    }

    const metrics = await (await get(`${base}/metrics`)).text();
    await checkMetrics(metrics);
    assertEquals(metric(metrics, "gmon_goroutines_live", pid, "main.leak"), K);
    assertEquals(metric(metrics, "gmon_goroutines_live", pid, "main.strand"), K);
    assertEquals(metric(metrics, "gmon_goroutines_created_total", pid, "main.leak"), 0);

    await gmon.waitFor((l) => {
      const a = attrs(l);
      return a.get("msg") === "leak report" && a.get("site") === "main.strand" && a.get("live") === String(K);
    }, "a leak report naming main.strand");

    const created = await pprofTraces(`${base}/debug/pprof/goroutinecreated`);
    assertEquals(created.filter((t) => t.frames[0] === "main.leak").map((t) => t.count), [K]);

    // Stranded goroutines wait on channels nothing else holds: leaked once watched for -leak-after.
    // The ones at main.leak wait on a channel a global holds: never judged leaked.
    await until("the stranded ones judged leaked", async () => {
      const dump = await (await get(`${base}/debug/pprof/goroutineleak?debug=2`)).text();
      return (dump.match(/ \[chan receive \(leaked\)\]:\nmain\.hang\(/g) ?? []).length === K;
    }, 20_000);
    const leakText = await (await get(`${base}/debug/pprof/goroutineleak?debug=1`)).text();
    assertEquals(leakText.split("\n")[0], `goroutineleak profile: total ${K}`);
    const leakTraces = await pprofTraces(`${base}/debug/pprof/goroutineleak`);
    assertEquals(leakTraces.map((t) => [t.count, t.frames.includes("main.hang")]), [[K, true]]);
    const judged = (await (await get(`${base}/goroutines`)).json()) as GoroutineJson[];
    assertEquals(judged.filter((r) => r.leaked).map((r) => r.site), new Array(K).fill("main.strand"));

    // The one-shot dump judges the same, beside the tracing gmon.
    const dump = await runGmon(["-pid", String(pid), "-dump", "goroutineleak", "-leak-after", "1s"]);
    assertEquals([dump.code, dump.stderr], [0, ""]);
    assertEquals(
      (dump.stdout.match(/^goroutine \d+ \[chan receive \(leaked\)\]:\nmain\.hang\(/gm) ?? []).length,
      K,
    );
    assert(!dump.stdout.includes("main.wait("), "goroutines on a global's channel are not leaked");

    // Released, the pre-existing goroutines exit: counted as such, and gone from the live counts.
    await leaker.send("release", "released");
    await until("nothing live at main.leak", async () => {
      const m = await (await get(`${base}/metrics`)).text();
      return metric(m, "gmon_goroutines_live", pid, "main.leak") === 0;
    });
    const m = await (await get(`${base}/metrics`)).text();
    assert(Number(/^gmon_goroutines_preexisting_exited_total (\d+)$/m.exec(m)?.[1]) >= K, m);
    await leaker.quit();
    assertEquals(await gmon.wait(), 0);
    assertEquals(gmon.stderr, "");
  } finally {
    await leaker.quit();
    await gmon?.stop("SIGKILL");
  }
});
