/**
 * The leak report: the creation sites with the most live goroutines, how old the oldest is and how
 * many more there are than at the last report, one slog line per site, e.g.
 * `msg="leak report" site=main.watch live=20 oldest=3.2s growth=+20 stack_id=8 pid=4242`.
 *
 * @module
 */
import { type Attr, formatAge } from "./slog.ts";
import type { StateView } from "../state/view.ts";

/** Sites per report. */
export const REPORT_SITES = 10;

/** One line of a report. */
export interface ReportLine {
  pid: number;
  site: string;
  live: number;
  /** Age of the oldest live goroutine there, ns. */
  oldestNs: number;
  /** Live now minus live at the previous report. */
  growth: number;
  /** The stack with the most live goroutines at that site. */
  stackId: number;
}

/** Remembers each site's live count between reports. */
export class LeakReport {
  readonly #view: StateView;
  readonly #top: number;
  #previous = new Map<string, number>();

  constructor(view: StateView, top = REPORT_SITES) {
    this.#view = view;
    this.#top = top;
  }

  /** The top sites by live count now (sites with nothing live are left out). */
  take(): ReportLine[] {
    const now = this.#view.nowNs();
    const oldest = this.#view.live.oldestBySite();
    const current = new Map<string, number>();
    const lines: ReportLine[] = [];
    for (const s of this.#view.live.sites()) {
      const key = s.pid + " " + s.site;
      current.set(key, s.live);
      if (s.live === 0) continue;
      lines.push({
        pid: s.pid,
        site: s.site,
        live: s.live,
        oldestNs: Math.max(0, now - (oldest.get(key) ?? now)),
        growth: s.live - (this.#previous.get(key) ?? 0),
        stackId: s.topStackId,
      });
    }
    this.#previous = current;
    lines.sort((a, b) => b.live - a.live || b.oldestNs - a.oldestNs || a.pid - b.pid);
    return lines.slice(0, this.#top);
  }

  /** {@link take} as slog attributes, one list per line; `[["live", 0]]` alone when nothing is live. */
  attrs(showPid: boolean): Attr[][] {
    const lines = this.take();
    if (lines.length === 0) return [[["live", 0]]];
    return lines.map((l) => {
      const a: Attr[] = [
        ["site", l.site],
        ["live", l.live],
        ["oldest", formatAge(l.oldestNs)],
        ["growth", (l.growth >= 0 ? "+" : "") + l.growth],
        ["stack_id", l.stackId],
      ];
      if (showPid) a.push(["pid", l.pid]);
      for (const [k, v] of this.#view.labels?.(l.pid) ?? []) a.push([k, v]);
      return a;
    });
  }
}
