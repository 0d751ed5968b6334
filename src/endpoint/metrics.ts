/**
 * The Prometheus text exposition (format 0.0.4) of the live state: counters of creations and exits, a
 * live gauge and a lifetime histogram per creation site and pid, and the lost-records counter.
 *
 * Cardinality stays bounded: the top {@link TOP_SITES} sites by live goroutines (over all processes)
 * get their own `site` label, the rest add up under `site="other"`. As sites move in and out of the top,
 * `other`'s counters can go down; Prometheus treats that as a counter reset.
 *
 * @module
 */
import { LIFETIME_BUCKETS, type SiteStats } from "../state/live.ts";
import type { StateView } from "../state/view.ts";

/** Sites with a label of their own. */
export const TOP_SITES = 20;
/** The label of the rest. */
export const OTHER = "other";

/** The Content-Type of {@link metricsText}. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value, escaped as the text format wants (backslash, double quote, newline). */
function labelValue(s: string): string {
  return s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Go's strconv.FormatFloat(f, 'g', -1, 64) is what Prometheus clients write; JS's shortest form reads the same. */
function num(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** Merges per-process site stats into at most `top` sites per pid plus `other`. */
export function boundSites(sites: readonly SiteStats[], top = TOP_SITES): SiteStats[] {
  const liveBySite = new Map<string, number>();
  const createdBySite = new Map<string, number>();
  for (const s of sites) {
    liveBySite.set(s.site, (liveBySite.get(s.site) ?? 0) + s.live);
    createdBySite.set(s.site, (createdBySite.get(s.site) ?? 0) + s.created);
  }
  const ranked = [...liveBySite.keys()].sort((a, b) =>
    liveBySite.get(b)! - liveBySite.get(a)! || createdBySite.get(b)! - createdBySite.get(a)! ||
    (a < b ? -1 : a > b ? 1 : 0)
  );
  const kept = new Set(ranked.slice(0, top));
  const out = new Map<string, SiteStats>();
  for (const s of sites) {
    const site = kept.has(s.site) && s.site !== OTHER ? s.site : OTHER;
    const key = s.pid + " " + site;
    const acc = out.get(key);
    if (acc === undefined) {
      out.set(key, { ...s, site, buckets: [...s.buckets] });
      continue;
    }
    acc.live += s.live;
    acc.created += s.created;
    acc.exited += s.exited;
    acc.lifetimeSeconds += s.lifetimeSeconds;
    s.buckets.forEach((n, i) => acc.buckets[i] += n);
    acc.topStackId = 0;
  }
  return [...out.values()].sort((a, b) => a.pid - b.pid || (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
}

/** The /metrics page. */
export function metricsText(view: StateView, top = TOP_SITES): string {
  const sites = boundSites(view.live.sites(), top);
  const extra = new Map<number, string>();
  const labelsOf = (s: SiteStats) => {
    let e = extra.get(s.pid);
    if (e === undefined) {
      e = (view.labels?.(s.pid) ?? []).map(([k, v]) => `,${k}="${labelValue(v)}"`).join("");
      extra.set(s.pid, e);
    }
    return `pid="${s.pid}"${e},site="${labelValue(s.site)}"`;
  };
  // Each series' labels, made once: every family and histogram line repeats them.
  const text = new Map(sites.map((s) => [s, labelsOf(s)]));
  const labels = (s: SiteStats) => text.get(s)!;
  let out = "";
  const family = (name: string, type: string, help: string, value: (s: SiteStats) => number) => {
    out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    for (const s of sites) out += `${name}{${labels(s)}} ${num(value(s))}\n`;
  };
  family(
    "gmon_goroutines_created_total",
    "counter",
    "Goroutines created since gmon attached, by creation site.",
    (s) => s.created,
  );
  family(
    "gmon_goroutines_exited_total",
    "counter",
    "Goroutines created since gmon attached that exited, by creation site.",
    (s) => s.exited,
  );
  family("gmon_goroutines_live", "gauge", "Goroutines alive now, by creation site.", (s) => s.live);
  const h = "gmon_goroutine_lifetime_seconds";
  out += `# HELP ${h} Lifetime of the goroutines that exited, by creation site.\n# TYPE ${h} histogram\n`;
  for (const s of sites) {
    let cumulative = 0;
    for (let b = 0; b < s.buckets.length; b++) {
      cumulative += s.buckets[b];
      const le = b < LIFETIME_BUCKETS.length ? num(LIFETIME_BUCKETS[b]) : "+Inf";
      out += `${h}_bucket{${labels(s)},le="${le}"} ${cumulative}\n`;
    }
    out += `${h}_sum{${labels(s)}} ${num(s.lifetimeSeconds)}\n`;
    out += `${h}_count{${labels(s)}} ${cumulative}\n`;
  }
  out +=
    "# HELP gmon_goroutines_preexisting_exited_total Exits of goroutines created before gmon attached.\n" +
    "# TYPE gmon_goroutines_preexisting_exited_total counter\n" +
    `gmon_goroutines_preexisting_exited_total ${view.live.preexisting}\n`;
  out += "# HELP gmon_events_lost_total Records the kernel could not queue (or gmon could not read).\n" +
    "# TYPE gmon_events_lost_total counter\n" + `gmon_events_lost_total ${view.lost()}\n`;
  return out;
}
