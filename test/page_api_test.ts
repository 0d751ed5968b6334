/**
 * The page's JSON API over hand-made state: the site rows and their caps, the chart's series, the
 * filters and sorts, one site opened, the snapshot's verdicts when a provider gives them, and bad
 * queries.
 */
import { assert, assertEquals } from "./assert.ts";
import { CHART_SITES, type Overview, type SiteDetail, TOP_ROWS } from "../src/endpoint/api.ts";
import { handle } from "../src/endpoint/http.ts";
import { SiteHistory } from "../src/state/history.ts";
import type { BlockedGroup, SiteSnapshot, Snapshot, StateView } from "../src/state/view.ts";
import { fakeView, NOW_NS, scene } from "./fake_view.ts";

const EPOCH = Date.parse("2026-11-27T06:00:00Z");
const NEWPROC = "runtime.newproc at /usr/local/go/src/runtime/proc.go:5298";

async function api<T>(view: StateView, path: string, history?: SiteHistory): Promise<T> {
  const r = await handle(view, new Request(`http://127.0.0.1:6060${path}`), { history });
  assertEquals(r.status, 200, await r.clone().text());
  assertEquals(r.headers.get("content-type"), "application/json");
  return await r.json() as T;
}

async function status(view: StateView, path: string): Promise<[number, string]> {
  const r = await handle(view, new Request(`http://127.0.0.1:6060${path}`));
  return [r.status, await r.text()];
}

/** A snapshot provider as the snapshot stage will give one: verdicts by pid and site. */
function snapshotOf(takenNs: number, sites: Record<string, SiteSnapshot>): Snapshot {
  return { takenNs, site: (pid, site) => sites[`${pid} ${site}`] };
}

Deno.test("api: overview rows, processes, totals and chart over the usual scene, no snapshot", async () => {
  const view = scene();
  const o = await api<Overview>(view, "/api/overview");
  assertEquals([o.path, o.now, o.started, o.pid, o.sort, o.range], [
    "/src/app/app",
    EPOCH + 100_000,
    null,
    null,
    "live",
    null,
  ]);
  assertEquals(o.processes, [
    { pid: 7, live: 2, created: 2, exited: 0, sites: 1 },
    { pid: 42, live: 4, created: 9, exited: 5, sites: 2 },
  ]);
  assertEquals(o.totals, { live: 6, created: 11, exited: 5, sites: 3, preexisting_exited: 0, lost: 3 });
  assertEquals(o.snapshot, null);
  assertEquals(o.rest, null);
  assertEquals(o.rows.map((r) => [r.pid, r.site, r.live, r.created, r.exited, r.oldest_seconds]), [
    [42, "main.leak", 4, 4, 0, 90],
    [7, "main.leak", 2, 2, 0, 10],
    [42, "main.churn", 0, 5, 5, null],
  ]);
  const leak = o.rows[0];
  assertEquals(
    leak.frame,
    "main.leak at /src/app/main.go:40",
    "its go statement, from the stack with most live",
  );
  assertEquals([leak.leaked, leak.blocked, leak.blocked_more], [null, [], 0]);
  assertEquals([leak.growth_1m, leak.growth_since_start], [4, 4], "without a history: all of it is new");
  // The chart: sites with goroutines live, most first; without a history only the point now.
  assertEquals(o.chart.t, [EPOCH / 1000 + 100]);
  assertEquals(o.chart.series.map((s) => [s.pid, s.site, s.values]), [[42, "main.leak", [4]], [
    7,
    "main.leak",
    [2],
  ]]);
  assertEquals(o.chart.other, { sites: 1, values: [0] });
});

Deno.test("api: filters by process, sorts by the column asked, limits the chart to a range", async () => {
  const view = scene();
  const o = await api<Overview>(view, "/api/overview?pid=42&sort=created");
  assertEquals(o.pid, 42);
  assertEquals(o.rows.map((r) => [r.pid, r.site]), [[42, "main.churn"], [42, "main.leak"]]);
  assertEquals(o.processes.length, 2, "every process is still offered");
  assertEquals(o.totals.live, 4);
  const oldest = await api<Overview>(view, "/api/overview?sort=oldest");
  assertEquals(oldest.rows.map((r) => [r.pid, r.oldest_seconds]), [[42, 90], [7, 10], [42, null]]);
  const exited = await api<Overview>(view, "/api/overview?sort=exited");
  assertEquals(exited.rows[0].site, "main.churn");

  // With a history sampled at 10 s steps: a 25 s range keeps the samples of the last 25 s.
  let now = 0;
  const clocked = { ...view, nowNs: () => now };
  const h = new SiteHistory(clocked);
  for (const s of [40, 50, 60, 70, 80, 90]) {
    now = s * 1e9;
    h.sample();
  }
  now = NOW_NS;
  const ranged = await api<Overview>(clocked, "/api/overview?range=25", h);
  assertEquals(ranged.range, 25);
  assertEquals(ranged.chart.t, [80, 90, 100].map((s) => EPOCH / 1000 + s));
  assertEquals(ranged.started, EPOCH + 40_000);
  const all = await api<Overview>(clocked, "/api/overview?range=all", h);
  assertEquals(all.chart.t.length, 7);
  assertEquals(all.chart.series[0].values, [4, 4, 4, 4, 4, 4, 4]);
});

Deno.test("api: 500 sites and 100k goroutines: capped rows and series, the rest summed, no goroutine listed", async () => {
  const SITES = 500;
  const stacks = Array.from(
    { length: SITES },
    (_, i) => [NEWPROC, `main.site${i} at /src/app/sites.go:${i + 1}`],
  );
  const view = fakeView(stacks);
  let goid = 1;
  // Four big sites (20k, 17.5k, 15k, 12.5k) and 496 of 80: 104,680 live over two processes.
  for (let i = 0; i < SITES; i++) {
    const n = i < 4 ? 20_000 - 2_500 * i : 80;
    for (let k = 0; k < n; k++) view.live.create(1000 + (i % 2), goid++, i + 1, 1e9 * (i % 90));
  }
  const live = view.live.live;
  assert(live >= 100_000, String(live));
  const r = await handle(view, new Request("http://127.0.0.1:6060/api/overview"));
  const body = await r.text();
  assert(body.length < 100_000, `the answer is ${body.length} bytes`);
  const o = JSON.parse(body) as Overview;
  assertEquals(o.rows.length, TOP_ROWS);
  assertEquals(o.rest?.sites, SITES - TOP_ROWS);
  assertEquals(o.rows.reduce((n, r) => n + r.live, 0) + o.rest!.live, live);
  assertEquals(o.rows.reduce((n, r) => n + r.created, 0) + o.rest!.created, live);
  assertEquals(o.rest?.leaked, null);
  assertEquals(o.chart.series.length, CHART_SITES);
  assertEquals(o.chart.series[0].live, 20_000);
  const drawn = o.chart.series.reduce((n, s) => n + s.values.at(-1)!, 0);
  assertEquals(drawn + o.chart.other.values.at(-1)!, live);
  assertEquals(o.chart.other.sites, SITES - CHART_SITES);
  // Opening the biggest site lists its stacks and a few oldest goroutines, never all 20k.
  const s = await api<SiteDetail>(view, "/api/site?pid=1000&site=main.site0");
  assertEquals([s.live, s.stacks.length, s.oldest.length], [20_000, 1, 10]);
  assertEquals(s.oldest.map((g) => g.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("api: a site opened: its stacks without runtime.newproc, oldest goroutines, lifetimes", async () => {
  const view = scene();
  const s = await api<SiteDetail>(view, "/api/site?pid=42&site=main.leak");
  assertEquals([s.pid, s.site, s.live, s.created, s.exited, s.oldest_seconds], [
    42,
    "main.leak",
    4,
    4,
    0,
    90,
  ]);
  assertEquals(s.stacks, [
    {
      stack_id: 1,
      live: 3,
      created: 3,
      frames: [
        "main.leak at /src/app/main.go:40",
        "main.main at /src/app/main.go:62",
        "runtime.main at /usr/local/go/src/runtime/proc.go:290",
      ],
    },
    {
      stack_id: 2,
      live: 1,
      created: 1,
      frames: [
        "main.leak at /src/app/main.go:44",
        "main.main at /src/app/main.go:63",
        "runtime.main at /usr/local/go/src/runtime/proc.go:290",
      ],
    },
  ]);
  assertEquals(s.oldest, [{ id: 10, age_seconds: 90 }, { id: 11, age_seconds: 80 }, {
    id: 12,
    age_seconds: 70,
  }, {
    id: 13,
    age_seconds: 60,
  }]);
  assertEquals([s.mean_lifetime_seconds, s.snapshot], [null, null]);
  const churn = await api<SiteDetail>(view, "/api/site?pid=42&site=main.churn");
  assertEquals([churn.live, churn.oldest_seconds, churn.mean_lifetime_seconds, churn.oldest], [
    0,
    null,
    0.002,
    [],
  ]);
  const other = await api<SiteDetail>(view, "/api/site?pid=7&site=main.leak");
  assertEquals(other.oldest.map((g) => g.id), [10, 11]);
});

Deno.test("api: a snapshot provider's verdicts: leaked per row, blocked-now groups capped", async () => {
  const groups: BlockedGroup[] = [
    { waitReason: "chan receive", frame: "main.wait at /src/app/main.go:12", count: 1 },
    { waitReason: "select", frame: "main.loop at /src/app/main.go:20", count: 2 },
    { waitReason: "sync.Mutex.Lock", frame: "main.lock at /src/app/main.go:30", count: 1 },
    { waitReason: "sleep", frame: "main.nap at /src/app/main.go:40", count: 1 },
  ];
  const view: StateView = {
    ...scene(),
    snapshot: () =>
      snapshotOf(95e9, {
        "42 main.leak": { goroutines: 4, leaked: 3, blocked: groups },
        "7 main.leak": { goroutines: 2, leaked: 0, blocked: [groups[1]] },
      }),
  };
  const o = await api<Overview>(view, "/api/overview?sort=leaked");
  assertEquals(o.snapshot, { taken_at: EPOCH + 95_000 });
  assertEquals(o.rows.map((r) => [r.pid, r.site, r.leaked]), [[42, "main.leak", 3], [7, "main.leak", 0], [
    42,
    "main.churn",
    null,
  ]]);
  assertEquals(o.rows[0].blocked, [
    { wait_reason: "select", frame: "main.loop at /src/app/main.go:20", count: 2 },
    { wait_reason: "chan receive", frame: "main.wait at /src/app/main.go:12", count: 1 },
    { wait_reason: "sync.Mutex.Lock", frame: "main.lock at /src/app/main.go:30", count: 1 },
  ]);
  assertEquals(o.rows[0].blocked_more, 1);
  const s = await api<SiteDetail>(view, "/api/site?pid=42&site=main.leak");
  assertEquals(s.snapshot?.leaked, 3);
  assertEquals(s.snapshot?.goroutines, 4);
  assertEquals(s.snapshot?.blocked.length, 4);
  assertEquals(s.snapshot?.blocked_more, 0);
  const churn = await api<SiteDetail>(view, "/api/site?pid=42&site=main.churn");
  assertEquals(churn.snapshot, null, "not in the snapshot");
  // A provider that has taken none yet reads as no snapshot.
  const none = await api<Overview>({ ...scene(), snapshot: () => null }, "/api/overview");
  assertEquals([none.snapshot, none.rows[0].leaked], [null, null]);
});

Deno.test("api: bad queries are 400, an unknown site 404", async () => {
  const view = scene();
  for (
    const path of [
      "/api/overview?pid=abc",
      "/api/overview?pid=0",
      "/api/overview?pid=-1",
      "/api/overview?sort=site",
      "/api/overview?range=0",
      "/api/overview?range=1.5",
      "/api/site?pid=42",
      "/api/site?site=main.leak",
      "/api/site?pid=x&site=main.leak",
    ]
  ) {
    const [code, text] = await status(view, path);
    assertEquals([path, code], [path, 400]);
    assert(text.startsWith("bad ") && text.endsWith("\n") && text.split("\n").length === 2, text);
  }
  assertEquals(await status(view, "/api/site?pid=42&site=main.nothing"), [
    404,
    "no such site in that process\n",
  ]);
  assertEquals((await status(view, "/api/site?pid=43&site=main.leak"))[0], 404);
  assertEquals((await status(view, "/api/overview?pid=43"))[0], 200, "a process gone: an empty table");
});
