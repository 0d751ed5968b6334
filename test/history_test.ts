/**
 * The page's history of live counts: what it keeps per second, how it stays bounded (coarse points,
 * peaks kept), the series cap, processes that end, and the trend that marks a leak.
 */
import { assert, assertEquals } from "./assert.ts";
import { COARSE_POINTS, FINE_POINTS, SiteHistory } from "../src/state/history.ts";
import type { LiveGoroutines } from "../src/state/live.ts";
import type { StateView } from "../src/state/view.ts";
import { fakeView } from "./fake_view.ts";

const NEWPROC = "runtime.newproc at /usr/local/go/src/runtime/proc.go:5298";

/** A view over `sites` sites (main.s0, main.s1, ...; stack i+1 is site i) with a clock tests move. */
function clocked(sites: number): { view: StateView & { live: LiveGoroutines }; at: (s: number) => void } {
  const stacks = Array.from(
    { length: sites },
    (_, i) => [NEWPROC, `main.s${i} at /src/app/main.go:${i + 1}`],
  );
  const base = fakeView(stacks);
  let now = 0;
  // epochMs maps monotonic 0 to a fixed date: times below are seconds since then.
  const view = { ...base, nowNs: () => now };
  return { view, at: (s) => now = s * 1e9 };
}

const EPOCH = Date.parse("2026-11-27T06:00:00Z");
const ms = (s: number) => EPOCH + s * 1000;

/** Makes `n` goroutines live at site `site` of `pid` (goids from `from`). */
function spawn(live: LiveGoroutines, pid: number, site: number, n: number, from: number): void {
  for (let g = from; g < from + n; g++) live.create(pid, g, site + 1);
}

Deno.test("history: a sample a second per site, zero before a site appears, the rest as other", () => {
  const { view, at } = clocked(3);
  const h = new SiteHistory(view);
  at(1);
  h.sample();
  spawn(view.live, 42, 0, 5, 100);
  at(2);
  h.sample();
  spawn(view.live, 42, 1, 2, 200);
  spawn(view.live, 7, 2, 4, 300);
  at(3);
  h.sample();
  view.live.exit(42, 100);
  at(4);
  h.sample();
  const sites = [{ pid: 42, site: "main.s0" }, { pid: 42, site: "main.s1" }, { pid: 9, site: "main.none" }];
  const all = h.chart(sites, null, -Infinity, 100);
  assertEquals(all.t, [ms(1), ms(2), ms(3), ms(4)]);
  assertEquals(all.series, [[0, 5, 5, 4], [0, 0, 2, 2], [0, 0, 0, 0]]);
  assertEquals(all.other, [0, 0, 4, 4], "pid 7's site");
  // Only process 42: its rest is nothing; from second 3 on.
  const one = h.chart(sites.slice(0, 1), [42], ms(3), 100);
  assertEquals(one, { t: [ms(3), ms(4)], series: [[5, 4]], other: [2, 2] });
  assertEquals(h.startedMs, ms(1));
  // A clock that didn't move adds nothing.
  h.sample();
  assertEquals(h.chart(sites, null, -Infinity, 100).t.length, 4);
});

Deno.test("history: asked for fewer points, each stands for the highest of its samples", () => {
  const { view, at } = clocked(1);
  const h = new SiteHistory(view);
  for (let s = 1; s <= 10; s++) {
    if (s === 4) spawn(view.live, 1, 0, 9, 1000);
    if (s === 5) { for (let g = 1000; g < 1009; g++) view.live.exit(1, g); }
    spawn(view.live, 1, 0, 1, s);
    at(s);
    h.sample();
  }
  const c = h.chart([{ pid: 1, site: "main.s0" }], null, -Infinity, 3);
  assertEquals(c.t, [ms(4), ms(8), ms(10)]);
  assertEquals(c.series, [[13, 8, 10]], "the spike at second 4 survives");
});

Deno.test("history: bounded however long it runs; older points coarser, peaks kept, start still shown", () => {
  const { view, at } = clocked(20);
  const h = new SiteHistory(view);
  for (let i = 0; i < 20; i++) spawn(view.live, 1, i, 1, i * 10);
  // A spike at second 5, far in the past by the end.
  const goid = 1000;
  const total = FINE_POINTS + COARSE_POINTS * 10 * 3 + 77;
  let bytesAtHour = 0;
  for (let s = 1; s <= total; s++) {
    if (s === 5) spawn(view.live, 1, 0, 500, goid);
    if (s === 6) { for (let g = goid; g < goid + 500; g++) view.live.exit(1, g); }
    at(s);
    h.sample();
    if (s === FINE_POINTS + COARSE_POINTS * 10) bytesAtHour = h.bytes;
  }
  // Series and timeline at their largest: nothing grew since.
  assertEquals(h.bytes, bytesAtHour);
  assert(
    h.bytes <= 21 * (FINE_POINTS + COARSE_POINTS) * 4 + (FINE_POINTS + COARSE_POINTS) * 8,
    String(h.bytes),
  );
  const c = h.chart([{ pid: 1, site: "main.s0" }], null, -Infinity, Infinity);
  assert(c.t.length <= FINE_POINTS + COARSE_POINTS + 1, String(c.t.length));
  assert(c.t.length > FINE_POINTS + COARSE_POINTS / 2, String(c.t.length));
  // The coarse part reaches back to the start, the fine part is the last hour second by second.
  assert(c.t[0] <= ms(1 + 10 * 2 ** 3), `${(c.t[0] - EPOCH) / 1000}`);
  assertEquals(
    c.t.slice(-FINE_POINTS),
    Array.from({ length: FINE_POINTS }, (_, i) => ms(total - FINE_POINTS + 1 + i)),
  );
  assert(c.t.every((t, i) => i === 0 || t > c.t[i - 1]), "times increase");
  assertEquals(c.series[0][0], 501, "the spike, merged into the first coarse point");
  assertEquals(Math.max(...c.series[0].slice(1)), 1);
});

Deno.test("history: at most so many series; the rest of a process counts as other", () => {
  const { view, at } = clocked(4);
  const h = new SiteHistory(view, { series: 2 });
  spawn(view.live, 1, 0, 3, 10);
  spawn(view.live, 1, 1, 2, 20);
  spawn(view.live, 1, 2, 4, 30);
  at(1);
  h.sample();
  assertEquals(h.seriesCount, 2);
  const c = h.chart([{ pid: 1, site: "main.s0" }, { pid: 1, site: "main.s2" }], null, -Infinity, 10);
  assertEquals(c.series, [[3], [0]], "main.s2 came third: no series of its own");
  assertEquals(c.other, [6]);
});

Deno.test("history: a process that ended keeps its series for an hour, then they go", () => {
  const { view, at } = clocked(2);
  const h = new SiteHistory(view, { fine: 10 });
  spawn(view.live, 1, 0, 3, 10);
  spawn(view.live, 2, 1, 1, 10);
  at(1);
  h.sample();
  view.live.dropProcess(1);
  for (let s = 2; s <= 12; s++) {
    at(s);
    h.sample();
  }
  assertEquals(h.seriesCount, 2, "kept while the fine ring reaches back to it");
  at(13);
  h.sample();
  assertEquals(h.seriesCount, 1);
  assertEquals(
    h.chart([{ pid: 1, site: "main.s0" }], [1], -Infinity, 100).series[0].every((v) => v === 0),
    true,
  );
});

Deno.test("history: the trend: growth over a minute, and only-grows for a site that rose more than once", () => {
  const { view, at } = clocked(3);
  const h = new SiteHistory(view);
  let goid = 1;
  // s0 leaks 2 a second; s1 rose once (a burst); s2 rose and fell.
  for (let s = 1; s <= 90; s++) {
    if (s > 10) {
      spawn(view.live, 1, 0, 2, goid);
      goid += 2;
    }
    if (s === 11) {
      spawn(view.live, 1, 1, 5, 10_000);
      spawn(view.live, 1, 2, 5, 20_000);
    }
    if (s === 12) spawn(view.live, 1, 2, 1, 30_000);
    if (s === 80) view.live.exit(1, 20_000);
    at(s);
    h.sample();
  }
  const leak = h.trend(1, "main.s0");
  assertEquals(leak.growth1m, 120);
  assertEquals(leak.growthSinceStart, 160);
  assertEquals(leak.risingBy, 160);
  assertEquals(leak.risingMs, 80_000, "since the sample before it appeared");
  assertEquals(leak.onlyGrows, true);
  const burst = h.trend(1, "main.s1");
  assertEquals([burst.growth1m, burst.risingBy, burst.onlyGrows], [0, 5, false]);
  const fell = h.trend(1, "main.s2");
  assertEquals([fell.risingMs, fell.risingBy, fell.onlyGrows], [10_000, 0, false]);
  assertEquals(h.trend(1, "main.nothing").onlyGrows, false);
  // Within the first minute, a site that rose twice and never fell already looks like a leak.
  const early = clocked(1);
  const h2 = new SiteHistory(early.view);
  for (let s = 1; s <= 3; s++) {
    spawn(early.view.live, 1, 0, 1, s);
    early.at(s);
    h2.sample();
  }
  assertEquals(h2.trend(1, "main.s0"), {
    growth1m: 3,
    growthSinceStart: 2, // it had 1 at the first sample
    risingMs: 2000,
    risingBy: 3,
    onlyGrows: true,
  });
});
