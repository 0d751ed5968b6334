import { assert, assertEquals } from "./assert.ts";
import { boundSites, metricsText, OTHER } from "../src/endpoint/metrics.ts";
import { LeakReport } from "../src/log/report.ts";
import { handle, serve } from "../src/endpoint/http.ts";
import { fakeView, scene } from "./fake_view.ts";
import { promtool } from "./promtool.ts";

/** The samples of a text exposition: `name{labels}` -> value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

Deno.test("metrics: the text passes promtool and counts by site and pid", async () => {
  const text = metricsText(scene());
  const r = await promtool(text);
  assertEquals([r.code, r.out], [0, ""]);
  const s = samples(text);
  assertEquals(s.get('gmon_goroutines_live{pid="42",site="main.leak"}'), 4);
  assertEquals(s.get('gmon_goroutines_live{pid="7",site="main.leak"}'), 2);
  assertEquals(s.get('gmon_goroutines_created_total{pid="42",site="main.churn"}'), 5);
  assertEquals(s.get('gmon_goroutines_exited_total{pid="42",site="main.churn"}'), 5);
  assertEquals(s.get('gmon_goroutines_live{pid="42",site="main.churn"}'), 0);
  // 2 ms lifetimes: above the 1 ms bucket, within 10 ms.
  assertEquals(s.get('gmon_goroutine_lifetime_seconds_bucket{pid="42",site="main.churn",le="0.001"}'), 0);
  assertEquals(s.get('gmon_goroutine_lifetime_seconds_bucket{pid="42",site="main.churn",le="0.01"}'), 5);
  assertEquals(s.get('gmon_goroutine_lifetime_seconds_bucket{pid="42",site="main.churn",le="+Inf"}'), 5);
  assertEquals(s.get('gmon_goroutine_lifetime_seconds_count{pid="42",site="main.churn"}'), 5);
  assert(Math.abs(s.get('gmon_goroutine_lifetime_seconds_sum{pid="42",site="main.churn"}')! - 0.01) < 1e-9);
  assertEquals(s.get("gmon_events_lost_total"), 3);
});

Deno.test("metrics: sites beyond the top N add up under other; odd names are escaped", async () => {
  const stacks = Array.from({ length: 30 }, (_, i) => [
    "runtime.newproc at /go/src/runtime/proc.go:5298",
    `main.site${i}"\\x at /src/app/main.go:${i + 1}`,
  ]);
  const view = fakeView(stacks);
  let goid = 1;
  for (let i = 0; i < 30; i++) for (let k = 0; k <= i; k++) view.live.create(1, goid++, i + 1, 0);
  const bounded = boundSites(view.live.sites(), 20);
  assertEquals(bounded.length, 21);
  const other = bounded.find((b) => b.site === OTHER)!;
  assertEquals(other.live, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10);
  assertEquals(bounded.reduce((n, b) => n + b.live, 0), view.live.live);
  const text = metricsText(view, 20);
  assert(text.includes('gmon_goroutines_live{pid="1",site="main.site29\\"\\\\x"} 30\n'), text);
  const r = await promtool(text);
  assertEquals([r.code, r.out], [0, ""]);
});

Deno.test("leak report: top sites, oldest age, growth since the last report", () => {
  const view = scene();
  const report = new LeakReport(view, 2);
  assertEquals(report.take(), [
    { pid: 42, site: "main.leak", live: 4, oldestNs: 90e9, growth: 4, stackId: 1 },
    { pid: 7, site: "main.leak", live: 2, oldestNs: 10e9, growth: 2, stackId: 1 },
  ]);
  view.live.exit(42, 10, 99e9);
  view.live.create(7, 12, 1, 99e9);
  assertEquals(report.attrs(true), [
    [["site", "main.leak"], ["live", 3], ["oldest", "1m20s"], ["growth", "-1"], ["stack_id", 1], ["pid", 42]],
    [["site", "main.leak"], ["live", 3], ["oldest", "10s"], ["growth", "+1"], ["stack_id", 1], ["pid", 7]],
  ]);
  const empty = new LeakReport(fakeView());
  assertEquals(empty.attrs(false), [[["live", 0]]]);
});

Deno.test("http: routes, methods and query values", async () => {
  const view = scene();
  const get = (path: string, method = "GET") => handle(view, new Request(`http://gmon${path}`, { method }));
  const cases: [string, string, number][] = [
    ["GET", "/debug/pprof/", 200],
    ["GET", "/debug/pprof/goroutinecreated", 200],
    ["GET", "/debug/pprof/goroutinecreated?debug=0", 200],
    ["GET", "/debug/pprof/goroutinecreated?debug=1", 200],
    ["GET", "/debug/pprof/goroutinecreated?debug=2", 200],
    ["GET", "/debug/pprof/goroutinecreated?debug=7", 400],
    ["GET", "/debug/pprof/goroutinecreated?debug=", 400],
    // Without readings of the processes (a view with none), the profiles of where goroutines are now
    // say so.
    ["GET", "/debug/pprof/goroutine", 503],
    ["GET", "/debug/pprof/goroutineleak?debug=2", 503],
    ["GET", "/metrics", 200],
    ["HEAD", "/metrics", 200],
    ["GET", "/goroutines", 200],
    ["POST", "/metrics", 405],
    ["DELETE", "/goroutines", 405],
    ["GET", "/", 200],
    ["GET", "/index.html", 404],
    ["GET", "/debug/pprof", 404],
    ["GET", "/debug/pprof/heap", 404],
    ["GET", "/debug/pprof/../../etc/passwd", 404],
    ["GET", "/etc/passwd", 404],
    ["GET", "/constructor", 404],
    ["GET", "/__proto__", 404],
  ];
  for (const [method, path, status] of cases) {
    const r = await get(path, method);
    await r.body?.cancel();
    assertEquals([method, path, r.status], [method, path, status]);
  }
  const r405 = await get("/metrics", "PUT");
  assertEquals(r405.headers.get("allow"), "GET, HEAD");
  await r405.body?.cancel();
  const json = await (await get("/goroutines")).json();
  assertEquals(json.length, 6);
  assertEquals(json[0], {
    id: 10,
    pid: 42,
    created_at: "2026-11-27T06:00:10.000Z",
    age_seconds: 90,
    preexisting: false,
    site: "main.leak",
    stack_id: 1,
    stack: [
      "runtime.newproc at /usr/local/go/src/runtime/proc.go:5298",
      "main.leak at /src/app/main.go:40",
      "main.main at /src/app/main.go:62",
      "runtime.main at /usr/local/go/src/runtime/proc.go:290",
    ],
    // Where it is now: not known to a view with no readings of the processes.
    status: null,
    wait_reason: null,
    waiting_seconds: null,
    waiting_for: [],
    leaked: false,
    current_stack: null,
  });
  const prof = await get("/debug/pprof/goroutinecreated");
  const bytes = new Uint8Array(await prof.arrayBuffer());
  assertEquals([bytes[0], bytes[1]], [0x1f, 0x8b], "gzip");
});

Deno.test("http: a failing handler answers 500, the server stays up", async () => {
  const view = scene();
  const broken = {
    ...view,
    nowNs: () => {
      throw new Error("boom");
    },
  };
  const r = await handle(broken, new Request("http://gmon/goroutines"));
  assertEquals([r.status, await r.text()], [500, "internal error: boom\n"]);
});

Deno.test("http: serves on the address asked; a port in use is one error", async () => {
  const view = scene();
  const ep = serve(view, "127.0.0.1", 0);
  try {
    assertEquals(ep.addr.hostname, "127.0.0.1");
    const r = await fetch(`http://127.0.0.1:${ep.addr.port}/metrics`);
    assertEquals(r.status, 200);
    assert((await r.text()).includes("gmon_goroutines_live"));
    let err: Error | undefined;
    try {
      serve(view, "127.0.0.1", ep.addr.port);
    } catch (e) {
      err = e as Error;
    }
    assert(
      err !== undefined && /^serve the endpoint on 127\.0\.0\.1:\d+: .*in use/i.test(err.message),
      String(err),
    );
    assert(!err.message.includes("\n"));
  } finally {
    await ep.close();
  }
});
