/**
 * The page's JSON API: aggregates only, whatever the number of goroutines, so a refresh stays small
 * with 100k live goroutines and 500 sites.
 *
 * - `/api/overview?pid=&sort=&range=`: totals per process, the creation sites (at most
 *   {@link TOP_ROWS} rows, the rest summed) with their counts, growth and snapshot verdicts, and the
 *   chart: the {@link CHART_SITES} sites with the most live goroutines over time, the rest summed.
 * - `/api/site?pid=&site=`: one site opened: its creation stacks, its oldest goroutines and where its
 *   goroutines are blocked now.
 *
 * @module
 */
import { z } from "zod";
import type { SiteStats } from "../state/live.ts";
import type { SiteHistory } from "../state/history.ts";
import { type BlockedGroup, siteFrames, type Snapshot, type StateView } from "../state/view.ts";

/** Site rows sent; the rest add up in `rest`. */
export const TOP_ROWS = 100;
/** Sites drawn; the rest add up in the chart's `other`. */
export const CHART_SITES = 8;
/** Points per chart series at most (the chart is about that many pixels wide). */
export const CHART_POINTS = 600;
/** Blocked-now groups in a row; in an opened site. */
export const ROW_BLOCKED = 3;
export const SITE_BLOCKED = 20;
/** Creation stacks and oldest goroutines of an opened site. */
export const SITE_STACKS = 20;
export const SITE_OLDEST = 10;

const pidParam = z.string().regex(/^[1-9]\d{0,9}$/, "want a process id").transform(Number);

/** Sort keys of the site table, each descending. */
export const SORTS = ["live", "growth", "oldest", "created", "exited", "leaked"] as const;

const overviewQuery = z.object({
  pid: z.union([z.literal("all"), pidParam]).default("all"),
  sort: z.enum(SORTS).default("live"),
  range: z.union([z.literal("all"), z.string().regex(/^[1-9]\d{0,7}$/, "want seconds").transform(Number)])
    .default("all"),
});

const siteQuery = z.object({ pid: pidParam, site: z.string().min(1).max(4096) });

/** A query that didn't parse: the endpoint answers 400 with this message. */
export class BadQuery extends Error {}

function parse<T extends z.ZodType>(schema: T, q: URLSearchParams): z.output<T> {
  const r = schema.safeParse(Object.fromEntries(q));
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new BadQuery(`bad ${issue.path.join(".") || "query"}: ${issue.message}`);
}

/** A blocked-now group as the API sends it. */
export interface BlockedJson {
  wait_reason: string;
  frame: string;
  count: number;
}

/** One creation site of one process in the table. */
export interface SiteRow {
  pid: number;
  site: string;
  /** Its `go` statement, `func at file:line` (empty if no stack of it is known). */
  frame: string;
  live: number;
  created: number;
  exited: number;
  /** Age of its oldest live goroutine; null when none is live. */
  oldest_seconds: number | null;
  /** Live now minus a minute ago. */
  growth_1m: number;
  growth_since_start: number;
  /** How long its count has not gone down, and by how much it went up in that time. */
  rising_seconds: number;
  rising_by: number;
  /** It went up over the last minute without ever going down: the look of a leak. */
  only_grows: boolean;
  /** Goroutines the snapshot judged leaked; null without a verdict (no snapshot, or not in it). */
  leaked: number | null;
  /** Where its goroutines are blocked now (the first groups), and how many wait elsewhere. */
  blocked: BlockedJson[];
  blocked_more: number;
}

/** Sites past the rows sent, summed. */
export interface RestJson {
  sites: number;
  live: number;
  created: number;
  exited: number;
  leaked: number | null;
}

/** One process traced. */
export interface ProcessJson {
  pid: number;
  live: number;
  created: number;
  exited: number;
  sites: number;
}

/** One site drawn. */
export interface ChartSeries {
  pid: number;
  site: string;
  live: number;
  growth_1m: number;
  only_grows: boolean;
  values: number[];
}

/** The `/api/overview` body. */
export interface Overview {
  path: string;
  /** Epoch ms of this answer; of the first sample of the history (null before). */
  now: number;
  started: number | null;
  /** The query as understood. */
  pid: number | null;
  sort: typeof SORTS[number];
  range: number | null;
  processes: ProcessJson[];
  totals: {
    live: number;
    created: number;
    exited: number;
    sites: number;
    preexisting_exited: number;
    lost: number;
  };
  /** The latest snapshot's time, epoch ms; null before the first (or when none is taken). */
  snapshot: { taken_at: number } | null;
  rows: SiteRow[];
  rest: RestJson | null;
  /** `t` in epoch seconds (what the chart library wants); the last point is now. */
  chart: { t: number[]; series: ChartSeries[]; other: { sites: number; values: number[] } };
}

function blockedJson(groups: readonly BlockedGroup[], n: number): { blocked: BlockedJson[]; more: number } {
  const sorted = [...groups].sort((a, b) => b.count - a.count);
  const blocked = sorted.slice(0, n).map((g) => ({
    wait_reason: g.waitReason,
    frame: g.frame,
    count: g.count,
  }));
  return { blocked, more: sorted.slice(n).reduce((sum, g) => sum + g.count, 0) };
}

const keyOf = (pid: number, site: string) => pid + " " + site;

/** Per `pid site`: the stack shown for a site, the one with the most live goroutines, else created. */
function siteStacks(view: StateView): Map<string, number> {
  const best = new Map<string, { id: number; live: number; created: number }>();
  for (const s of view.live.stacks()) {
    const key = keyOf(s.pid, s.site);
    const b = best.get(key);
    if (b === undefined || s.live > b.live || s.live === b.live && s.created > b.created) {
      best.set(key, { id: s.stackId, live: s.live, created: s.created });
    }
  }
  return new Map([...best].map(([k, v]) => [k, v.id]));
}

/** The `/api/overview` answer for query `q`. */
export function overview(view: StateView, history: SiteHistory | undefined, q: URLSearchParams): Overview {
  const query = parse(overviewQuery, q);
  const pid = query.pid === "all" ? null : query.pid;
  const nowNs = view.nowNs();
  const now = view.epochMs(nowNs);
  const all = view.live.sites();
  const byPid = new Map<number, ProcessJson>();
  for (const s of all) {
    let p = byPid.get(s.pid);
    if (p === undefined) byPid.set(s.pid, p = { pid: s.pid, live: 0, created: 0, exited: 0, sites: 0 });
    p.live += s.live;
    p.created += s.created;
    p.exited += s.exited;
    p.sites++;
  }
  const sites = pid === null ? all : all.filter((s) => s.pid === pid);
  const snap = view.snapshot?.() ?? null;
  const oldest = view.live.oldestBySite();
  const stackOf = siteStacks(view);
  const rows = sites.map((s) => siteRow(view, history, snap, s, oldest, stackOf, nowNs));
  const ranked = rows.sort(byKey(query.sort));
  const shown = ranked.slice(0, TOP_ROWS);
  const restRows = ranked.slice(TOP_ROWS);
  const rest = restRows.length === 0 ? null : {
    sites: restRows.length,
    live: sum(restRows, (r) => r.live),
    created: sum(restRows, (r) => r.created),
    exited: sum(restRows, (r) => r.exited),
    leaked: snap === null ? null : sum(restRows, (r) => r.leaked ?? 0),
  };

  // The chart draws the sites with the most live goroutines whatever the table's order.
  const drawn = sites.filter((s) => s.live > 0).sort((a, b) =>
    b.live - a.live || b.created - a.created || a.pid - b.pid || cmp(a.site, b.site)
  ).slice(0, CHART_SITES);
  const fromMs = query.range === "all" ? -Infinity : now - query.range * 1000;
  const pids = pid === null ? null : [pid];
  const past = history?.chart(drawn, pids, fromMs, CHART_POINTS - 1) ??
    { t: [], series: drawn.map(() => []), other: [] };
  // The last point is now, so the chart ends where the table stands.
  const liveTotal = sum(sites, (s) => s.live);
  const drawnTotal = sum(drawn, (s) => s.live);
  const rowOf = new Map(rows.map((r) => [keyOf(r.pid, r.site), r]));
  const chart = {
    t: [...past.t, now].map((ms) => ms / 1000),
    series: drawn.map((s, i) => {
      const r = rowOf.get(keyOf(s.pid, s.site))!;
      return {
        pid: s.pid,
        site: s.site,
        live: s.live,
        growth_1m: r.growth_1m,
        only_grows: r.only_grows,
        values: [...past.series[i], s.live],
      };
    }),
    other: { sites: sites.length - drawn.length, values: [...past.other, liveTotal - drawnTotal] },
  };
  const started = history?.startedMs ?? NaN;
  return {
    path: view.path,
    now,
    started: Number.isNaN(started) ? null : started,
    pid,
    sort: query.sort,
    range: query.range === "all" ? null : query.range,
    processes: [...byPid.values()].sort((a, b) => a.pid - b.pid),
    totals: {
      live: liveTotal,
      created: sum(sites, (s) => s.created),
      exited: sum(sites, (s) => s.exited),
      sites: sites.length,
      preexisting_exited: view.live.preexisting,
      lost: view.lost(),
    },
    snapshot: snap === null ? null : { taken_at: view.epochMs(snap.takenNs) },
    rows: shown,
    rest,
    chart,
  };
}

function siteRow(
  view: StateView,
  history: SiteHistory | undefined,
  snap: Snapshot | null,
  s: SiteStats,
  oldest: Map<string, number>,
  stackOf: Map<string, number>,
  nowNs: number,
): SiteRow {
  const key = keyOf(s.pid, s.site);
  const born = oldest.get(key);
  const trend = history?.trend(s.pid, s.site);
  const verdict = snap?.site(s.pid, s.site);
  const { blocked, more } = blockedJson(verdict?.blocked ?? [], ROW_BLOCKED);
  const stackId = stackOf.get(key);
  const frames = stackId === undefined ? [] : siteFrames(view.stack(stackId)?.frames ?? []);
  return {
    pid: s.pid,
    site: s.site,
    frame: frames[0] ?? "",
    live: s.live,
    created: s.created,
    exited: s.exited,
    oldest_seconds: born === undefined ? null : seconds(nowNs - born),
    // Without a history (gmon just started) everything live appeared since.
    growth_1m: trend?.growth1m ?? s.live,
    growth_since_start: trend?.growthSinceStart ?? s.live,
    rising_seconds: trend === undefined ? 0 : Math.round(trend.risingMs) / 1000,
    rising_by: trend?.risingBy ?? 0,
    only_grows: trend?.onlyGrows ?? false,
    leaked: verdict?.leaked ?? null,
    blocked,
    blocked_more: more,
  };
}

function byKey(sort: typeof SORTS[number]): (a: SiteRow, b: SiteRow) => number {
  const key: (r: SiteRow) => number = {
    live: (r: SiteRow) => r.live,
    growth: (r: SiteRow) => r.growth_1m,
    oldest: (r: SiteRow) => r.oldest_seconds ?? -1,
    created: (r: SiteRow) => r.created,
    exited: (r: SiteRow) => r.exited,
    leaked: (r: SiteRow) => r.leaked ?? -1,
  }[sort];
  return (a, b) =>
    key(b) - key(a) || b.live - a.live || b.created - a.created || a.pid - b.pid || cmp(a.site, b.site);
}

/** One creation stack of an opened site. */
export interface StackJson {
  stack_id: number;
  live: number;
  created: number;
  /** `func at file:line`, innermost first, from the `go` statement (runtime.newproc left out). */
  frames: readonly string[];
}

/** The `/api/site` body. */
export interface SiteDetail {
  pid: number;
  site: string;
  live: number;
  created: number;
  exited: number;
  oldest_seconds: number | null;
  /** Mean lifetime of its goroutines that exited; null if none did. */
  mean_lifetime_seconds: number | null;
  stacks: StackJson[];
  stacks_more: number;
  /** Its oldest live goroutines. */
  oldest: { id: number; age_seconds: number }[];
  /** What the latest snapshot says of it; null without a verdict (no snapshot, or not in it). */
  snapshot: { goroutines: number; leaked: number; blocked: BlockedJson[]; blocked_more: number } | null;
}

/** The `/api/site` answer for query `q`; null when the process has no such site. */
export function siteDetail(view: StateView, q: URLSearchParams): SiteDetail | null {
  const { pid, site } = parse(siteQuery, q);
  const s = view.live.sites().find((s) => s.pid === pid && s.site === site);
  if (s === undefined) return null;
  const nowNs = view.nowNs();
  const stacks = view.live.stacks().filter((st) => st.pid === pid && st.site === site)
    .sort((a, b) => b.live - a.live || b.created - a.created || a.stackId - b.stackId);
  // The oldest few, kept sorted while scanning: a site may have 100k live goroutines.
  const oldest: { id: number; born: number }[] = [];
  view.live.forEachLive((p, goid, born, stackId) => {
    if (p !== pid || view.live.siteOfStack(stackId) !== site) return;
    if (oldest.length === SITE_OLDEST && born >= oldest[SITE_OLDEST - 1].born) return;
    let i = oldest.length;
    while (i > 0 && (oldest[i - 1].born > born || oldest[i - 1].born === born && oldest[i - 1].id > goid)) {
      i--;
    }
    oldest.splice(i, 0, { id: goid, born });
    if (oldest.length > SITE_OLDEST) oldest.pop();
  });
  const snap = view.snapshot?.() ?? null;
  const verdict = snap?.site(pid, site);
  const blocked = verdict === undefined ? null : blockedJson(verdict.blocked, SITE_BLOCKED);
  return {
    pid,
    site,
    live: s.live,
    created: s.created,
    exited: s.exited,
    oldest_seconds: oldest.length === 0 ? null : seconds(nowNs - oldest[0].born),
    mean_lifetime_seconds: s.exited === 0 ? null : s.lifetimeSeconds / s.exited,
    stacks: stacks.slice(0, SITE_STACKS).map((st) => ({
      stack_id: st.stackId,
      live: st.live,
      created: st.created,
      frames: siteFrames(view.stack(st.stackId)?.frames ?? []),
    })),
    stacks_more: Math.max(0, stacks.length - SITE_STACKS),
    oldest: oldest.map((g) => ({ id: g.id, age_seconds: seconds(nowNs - g.born) })),
    snapshot: verdict === undefined || blocked === null ? null : {
      goroutines: verdict.goroutines,
      leaked: verdict.leaked,
      blocked: blocked.blocked,
      blocked_more: blocked.more,
    },
  };
}

function seconds(ns: number): number {
  return Math.max(0, Math.round(ns / 1e6)) / 1e3;
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let n = 0;
  for (const x of xs) n += f(x);
  return n;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
