/**
 * Leak verdicts from gmon's own observation: a goroutine is judged leaked when it has been blocked on a
 * channel, a select or a sync primitive (not sleep, not I/O, not the runtime's own waits) at the same
 * place, without running in between, for at least `leakAfter`.
 *
 * "Without running in between" is what makes a parked worker that wakes, works and parks again at
 * the same line not a leak. gmon knows it from two readings: the same status, wait reason and stack
 * (every physical pc) in both, and g.waitsince: the runtime zeroes it whenever the goroutine is
 * scheduled and a GC sets it once to the cycle's start, so an unchanged non-zero waitsince proves the
 * goroutine did not run since then — and how long it has been blocked, before gmon first looked.
 *
 * Some waits can never end, whatever the time: a receive from or send to a nil channel, and a select
 * with no cases. Those are leaked from the first reading.
 *
 * And some long waits are not leaks: a goroutine blocked on a channel that a global variable holds can
 * still be woken by any code (Go's own leak detector, whose verdict comes from GC reachability, counts
 * globals as roots). Callers pass the channels globals hold; such goroutines are never judged leaked.
 *
 * @module
 */
import { type Goroutine, Status } from "./goroutine.ts";

/** Wait reasons of channel, select and sync waits (the string tables of Go 1.19-1.27). */
const BLOCKING: ReadonlySet<string> = new Set([
  "chan receive",
  "chan send",
  "select",
  "chan receive (nil chan)",
  "chan send (nil chan)",
  "select (no cases)",
  "semacquire",
  "sync.Cond.Wait",
  "sync.Mutex.Lock",
  "sync.RWMutex.RLock",
  "sync.RWMutex.Lock",
  "sync.WaitGroup.Wait",
  "chan receive (durable)",
  "chan send (durable)",
  "select (durable)",
  "sync.WaitGroup.Wait (durable)",
]);

/** Waits nothing can end. */
const FOREVER: ReadonlySet<string> = new Set([
  "chan receive (nil chan)",
  "chan send (nil chan)",
  "select (no cases)",
]);

/** Whether `g` waits on a channel, select or sync primitive (a wait that another goroutine must end). */
export function blocking(g: Goroutine): boolean {
  return !g.system && (g.status === Status.waiting || g.status === Status.leaked) &&
    BLOCKING.has(g.waitReason);
}

/** What gmon knows of one blocked goroutine. */
interface Observation {
  place: string;
  /** CLOCK_MONOTONIC of the first reading that saw it at this place. */
  firstSeenNs: number;
  /** g.waitsince then (0: no GC has scanned it yet). */
  waitSinceNs: number;
  /** Readings that saw it here, unmoved. */
  readings: number;
}

/** One goroutine judged leaked. */
export interface LeakVerdict {
  goid: number;
  /** How long it has been blocked at its place as far as gmon can tell, ns. */
  blockedNs: number;
  /** "never" (a wait nothing can end), "observed" (gmon watched it long enough) or "waitsince". */
  why: "never" | "observed" | "waitsince";
}

/** Observations of one process's goroutines across readings. */
export class LeakWatch {
  readonly #seen = new Map<number, Observation>();

  /** Takes a reading (`startNs`: when it began) into account; goroutines no longer blocked are forgotten. */
  observe(goroutines: readonly Goroutine[], startNs: number): void {
    const live = new Set<number>();
    for (const g of goroutines) {
      if (!blocking(g)) continue;
      live.add(g.goid);
      const place = `${g.status} ${g.waitReason} ${g.pcs.join(",")}`;
      const prev = this.#seen.get(g.goid);
      if (prev !== undefined && prev.place === place && unmoved(prev.waitSinceNs, g.waitSinceNs)) {
        prev.readings++;
        if (prev.waitSinceNs === 0) prev.waitSinceNs = g.waitSinceNs;
        continue;
      }
      this.#seen.set(g.goid, { place, firstSeenNs: startNs, waitSinceNs: g.waitSinceNs, readings: 1 });
    }
    for (const goid of this.#seen.keys()) if (!live.has(goid)) this.#seen.delete(goid);
  }

  /**
   * The verdict on `g` at `nowNs` (CLOCK_MONOTONIC), or null if it is not (yet) judged leaked;
   * `reachable`: channels that globals hold (see the module's text).
   */
  verdict(
    g: Goroutine,
    nowNs: number,
    leakAfterNs: number,
    reachable?: ReadonlySet<number>,
  ): LeakVerdict | null {
    if (!blocking(g)) return null;
    if (reachable !== undefined && g.waitingOn.some((c) => reachable.has(c))) return null;
    const o = this.#seen.get(g.goid);
    if (o === undefined) return null;
    if (FOREVER.has(g.waitReason)) return { goid: g.goid, blockedNs: nowNs - o.firstSeenNs, why: "never" };
    const observed = o.readings >= 2 ? nowNs - o.firstSeenNs : 0;
    // waitsince counts only once a second reading confirmed it: then it proves no run since.
    const bySince = o.readings >= 2 && o.waitSinceNs !== 0 ? nowNs - o.waitSinceNs : 0;
    const blockedNs = Math.max(observed, bySince);
    if (blockedNs < leakAfterNs) return null;
    return { goid: g.goid, blockedNs, why: observed >= leakAfterNs ? "observed" : "waitsince" };
  }

  /**
   * How much longer gmon must watch before every goroutine blocked now could be judged (0: no
   * candidate needs more time); for one-shot dumps.
   */
  remainingNs(goroutines: readonly Goroutine[], nowNs: number, leakAfterNs: number): number {
    let most = 0;
    for (const g of goroutines) {
      const o = this.#seen.get(g.goid);
      if (o === undefined || !blocking(g) || FOREVER.has(g.waitReason)) continue;
      if (o.readings >= 2 && o.waitSinceNs !== 0 && nowNs - o.waitSinceNs >= leakAfterNs) continue;
      most = Math.max(most, o.firstSeenNs + leakAfterNs - nowNs);
    }
    return most;
  }
}

/** waitsince across two readings of a goroutine that did not run: unset, set once, or the same. */
function unmoved(before: number, after: number): boolean {
  return before === 0 || before === after;
}
