/**
 * Live goroutines per creation site over time, what the page's chart draws. The endpoint samples the
 * live state once a second ({@link SiteHistory.sample}); what is kept stays bounded however long gmon
 * runs:
 *
 * - the last {@link FINE_POINTS} samples (an hour) as they were, in a ring;
 * - everything older at a coarser step: at most {@link COARSE_POINTS} points, each the highest count
 *   of its span (a peak is never smoothed away); when they fill up, neighbours merge and the step
 *   doubles, so the chart still reaches back to when gmon attached.
 *
 * A series is one (process, site) pair, made the first time the site has goroutines live at a sample
 * (a site whose goroutines never outlive a second costs nothing). At most {@link MAX_SERIES} exist;
 * sites past that count only in their process's total, which the chart shows as "other". A process that
 * ended keeps its series for as long as the fine ring reaches back, then they go.
 *
 * Memory: 4 bytes a point, (FINE_POINTS + COARSE_POINTS) per series once an hour has passed: 17 KB a
 * series, 8.6 MB for 500 sites. Arrays grow by doubling up to that, so a short run costs little.
 *
 * @module
 */
import type { StateView } from "./view.ts";

/** Samples kept as they were: an hour at one a second. */
export const FINE_POINTS = 3600;
/** Older points kept, each the highest count of its span. */
export const COARSE_POINTS = 720;
/** Series kept (process and site pairs; process totals apart). */
export const MAX_SERIES = 500;
/** Fine samples one coarse point covers at first (doubling each time the coarse points fill up). */
const FIRST_STEP = 10;

/** Sizes, for tests. */
export interface HistoryLimits {
  fine: number;
  coarse: number;
  series: number;
}

/** The values of one series, on the shared timeline. */
class Series {
  fine: Int32Array;
  coarse: Int32Array;
  /** The highest fine value folded into the coarse point being filled. */
  open = 0;
  /** Value at the latest sample. */
  last = 0;
  /** The time of the sample before it appeared (its count was 0 then). */
  readonly bornMs: number;
  /** The time of the latest sample at which it went down (bornMs if it never did). */
  riseFromMs: number;
  /** Its value then. */
  riseFrom = 0;
  /** Samples at which it went up since then. */
  rises = 0;
  /** When the process was first seen gone (NaN while it runs). */
  goneMs = NaN;

  constructor(readonly pid: number, fineLength: number, coarseLength: number, since: number) {
    this.fine = new Int32Array(fineLength);
    this.coarse = new Int32Array(coarseLength);
    this.bornMs = since;
    this.riseFromMs = since;
  }
}

/** Points of a {@link SiteHistory.chart}: times (epoch ms) and one value array per series asked. */
export interface ChartData {
  t: number[];
  series: number[][];
  /** Per point, the goroutines of the processes asked that none of the series counts. */
  other: number[];
}

/** Where one series stands, for the table. */
export interface Trend {
  /** Live at the latest sample minus live a minute before it (0 before the site existed). */
  growth1m: number;
  /** Live at the latest sample minus live at the first sample. */
  growthSinceStart: number;
  /** How long the count has not gone down, ms (since the site appeared if it never did). */
  risingMs: number;
  /** How much it went up in that time. */
  risingBy: number;
  /**
   * The look of a leak: up over the last minute, up at more than one sample, and not down once for a
   * minute (or since the site appeared).
   */
  onlyGrows: boolean;
}

/** Per-second history of the live goroutines of every creation site. */
export class SiteHistory {
  readonly #view: StateView;
  readonly #limits: HistoryLimits;
  // The fine ring: times (epoch ms) and where the next sample goes. It wraps only once full.
  #fineT: Float64Array;
  #head = 0;
  #n = 0;
  // The coarse points, oldest first; then the one being filled from fine points leaving the ring.
  #coarseT: Float64Array;
  #cn = 0;
  #step = FIRST_STEP;
  #pendingN = 0;
  #pendingT = 0;
  readonly #sites = new Map<string, Series>();
  readonly #totals = new Map<number, Series>();
  #started = NaN;

  constructor(view: StateView, limits: Partial<HistoryLimits> = {}) {
    this.#view = view;
    this.#limits = { fine: FINE_POINTS, coarse: COARSE_POINTS, series: MAX_SERIES, ...limits };
    this.#fineT = new Float64Array(Math.min(64, this.#limits.fine));
    this.#coarseT = new Float64Array(Math.min(16, this.#limits.coarse));
  }

  /** When the first sample was taken, epoch ms (NaN before). */
  get startedMs(): number {
    return this.#started;
  }

  /** Series kept now (process totals apart). */
  get seriesCount(): number {
    return this.#sites.size;
  }

  /** Bytes held by the values and times. */
  get bytes(): number {
    let n = this.#fineT.byteLength + this.#coarseT.byteLength;
    for (const s of this.#all()) n += s.fine.byteLength + s.coarse.byteLength;
    return n;
  }

  /** Records the live count of every site now. A sample no later than the previous one is ignored. */
  sample(): void {
    const now = this.#view.epochMs(this.#view.nowNs());
    const prev = this.#n === 0
      ? NaN
      : this.#fineT[(this.#head - 1 + this.#fineT.length) % this.#fineT.length];
    if (now <= prev) return;
    if (Number.isNaN(this.#started)) this.#started = now;
    if (this.#n === this.#limits.fine) this.#fold(this.#head);
    else if (this.#n === this.#fineT.length) this.#growFine();
    const at = this.#head;
    this.#fineT[at] = now;
    for (const s of this.#all()) s.fine[at] = 0;
    const since = Number.isNaN(prev) ? now : prev;
    for (const st of this.#view.live.sites()) {
      if (st.live === 0) continue;
      let total = this.#totals.get(st.pid);
      if (total === undefined) {
        total = this.#series(st.pid, since);
        this.#totals.set(st.pid, total);
      }
      total.fine[at] += st.live;
      const key = st.pid + " " + st.site;
      let s = this.#sites.get(key);
      if (s === undefined) {
        if (this.#sites.size >= this.#limits.series) continue;
        s = this.#series(st.pid, since);
        this.#sites.set(key, s);
      }
      s.fine[at] = st.live;
    }
    const alive = new Set(this.#view.live.pids());
    // A process gone keeps its series while the fine ring still reaches back to when it ran.
    const keepMs = this.#limits.fine * 1000;
    const retire = (s: Series) => {
      if (alive.has(s.pid)) s.goneMs = NaN;
      else if (Number.isNaN(s.goneMs)) s.goneMs = now;
      return now - s.goneMs > keepMs;
    };
    for (const [key, s] of this.#sites) if (retire(s)) this.#sites.delete(key);
    for (const [pid, s] of this.#totals) if (retire(s)) this.#totals.delete(pid);
    for (const s of this.#all()) {
      const v = s.fine[at];
      if (v < s.last) {
        s.riseFromMs = now;
        s.riseFrom = v;
        s.rises = 0;
      } else if (v > s.last) s.rises++;
      s.last = v;
    }
    this.#head = (at + 1) % this.#fineT.length;
    if (this.#n < this.#limits.fine) this.#n++;
  }

  /**
   * The series of `sites` and, as `other`, the rest of the goroutines of `pids` (every process when
   * null), from `fromMs` on, at most `maxPoints` points (each the highest of the samples it stands
   * for). A site without a series reads as 0 throughout.
   */
  chart(
    sites: readonly { pid: number; site: string }[],
    pids: readonly number[] | null,
    fromMs: number,
    maxPoints: number,
  ): ChartData {
    const found = sites.map((k) => this.#sites.get(k.pid + " " + k.site));
    const totals = pids === null
      ? [...this.#totals.values()]
      : pids.flatMap((p) => this.#totals.get(p) ?? []);
    const count = this.#points();
    let first = this.#search(fromMs - 1) + 1;
    if (first < 0) first = 0;
    const n = count - first;
    const per = Math.max(1, Math.ceil(n / Math.max(1, maxPoints)));
    const out: ChartData = { t: [], series: sites.map(() => []), other: [] };
    for (let start = first; start < count; start += per) {
      const end = Math.min(count, start + per);
      let other = 0;
      const vals = found.map(() => 0);
      for (let i = start; i < end; i++) {
        let rest = 0;
        for (const t of totals) rest += this.#value(t, i);
        found.forEach((s, j) => {
          if (s === undefined) return;
          const v = this.#value(s, i);
          if (v > vals[j]) vals[j] = v;
          rest -= v;
        });
        if (rest > other) other = rest;
      }
      out.t.push(this.#time(end - 1));
      vals.forEach((v, j) => out.series[j].push(v));
      out.other.push(other);
    }
    return out;
  }

  /** Where the series of `site` in `pid` stands at the latest sample. */
  trend(pid: number, site: string): Trend {
    const s = this.#sites.get(pid + " " + site);
    const count = this.#points();
    if (s === undefined || count === 0) {
      return { growth1m: 0, growthSinceStart: 0, risingMs: 0, risingBy: 0, onlyGrows: false };
    }
    const now = this.#time(count - 1);
    const ago = this.#search(now - 60_000);
    const growth1m = s.last - (ago < 0 ? 0 : this.#value(s, ago));
    const risingMs = now - s.riseFromMs;
    const risingBy = s.last - s.riseFrom;
    // Up more than once (one burst, like the runtime's own goroutines at start, is not a trend), and no
    // drop for a minute or since the site appeared.
    const onlyGrows = growth1m > 0 && s.rises >= 2 &&
      (s.riseFromMs <= now - 60_000 || s.riseFromMs === s.bornMs);
    return { growth1m, growthSinceStart: s.last - this.#value(s, 0), risingMs, risingBy, onlyGrows };
  }

  *#all(): Iterable<Series> {
    yield* this.#sites.values();
    yield* this.#totals.values();
  }

  #series(pid: number, since: number): Series {
    return new Series(pid, this.#fineT.length, this.#coarseT.length, since);
  }

  #growFine(): void {
    const n = Math.min(this.#limits.fine, this.#fineT.length * 2);
    this.#fineT = resize(this.#fineT, n);
    for (const s of this.#all()) s.fine = resize(s.fine, n);
    this.#head = this.#n;
  }

  /** Moves the fine point at `h` (the oldest, about to be overwritten) into the coarse points. */
  #fold(h: number): void {
    for (const s of this.#all()) if (s.fine[h] > s.open) s.open = s.fine[h];
    this.#pendingT = this.#fineT[h];
    if (++this.#pendingN < this.#step) return;
    if (this.#cn === this.#coarseT.length) {
      const n = Math.min(this.#limits.coarse, this.#coarseT.length * 2);
      this.#coarseT = resize(this.#coarseT, n);
      for (const s of this.#all()) s.coarse = resize(s.coarse, n);
    }
    this.#coarseT[this.#cn] = this.#pendingT;
    for (const s of this.#all()) {
      s.coarse[this.#cn] = s.open;
      s.open = 0;
    }
    this.#cn++;
    this.#pendingN = 0;
    if (this.#cn < this.#limits.coarse) return;
    // Full: pairs merge (the later time, the higher count) and each point now spans twice as long.
    const half = this.#cn >> 1;
    for (let i = 0; i < half; i++) this.#coarseT[i] = this.#coarseT[2 * i + 1];
    for (const s of this.#all()) {
      for (let i = 0; i < half; i++) s.coarse[i] = Math.max(s.coarse[2 * i], s.coarse[2 * i + 1]);
      s.coarse.fill(0, half);
    }
    this.#cn = half;
    this.#step *= 2;
  }

  // The timeline, oldest first: coarse points, the coarse point being filled, then the fine ring.

  #points(): number {
    return this.#cn + (this.#pendingN > 0 ? 1 : 0) + this.#n;
  }

  #time(i: number): number {
    if (i < this.#cn) return this.#coarseT[i];
    i -= this.#cn;
    if (this.#pendingN > 0) {
      if (i === 0) return this.#pendingT;
      i--;
    }
    return this.#fineT[this.#fine(i)];
  }

  #value(s: Series, i: number): number {
    if (i < this.#cn) return s.coarse[i];
    i -= this.#cn;
    if (this.#pendingN > 0) {
      if (i === 0) return s.open;
      i--;
    }
    return s.fine[this.#fine(i)];
  }

  /** The ring position of the `i`th oldest fine point. */
  #fine(i: number): number {
    const len = this.#fineT.length;
    return (this.#head - this.#n + i + len) % len;
  }

  /** The index of the latest point at or before `ms`; -1 if none. */
  #search(ms: number): number {
    let lo = 0;
    let hi = this.#points();
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#time(mid) <= ms) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

function resize<T extends Float64Array | Int32Array>(from: T, n: number): T {
  const to = new (from.constructor as new (n: number) => T)(n);
  to.set(from.subarray(0, Math.min(n, from.length)));
  return to;
}
