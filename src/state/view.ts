/**
 * What the endpoint and the leak report read: the live state, the stacks behind its ids and the clocks
 * to turn creation times into ages and dates. The tracer builds one; tests build their own.
 *
 * @module
 */
import type { LiveSnapshots } from "../snapshot/source.ts";
import type { StackEntry } from "../symbolize/stacks.ts";
import { creatorFrames, type LiveGoroutines } from "./live.ts";

/** A read-only window on a tracing session. */
export interface StateView {
  /** The executable traced (named in profiles). */
  readonly path: string;
  readonly live: LiveGoroutines;
  /** The interned stack with this id. */
  stack(id: number): StackEntry | undefined;
  /** CLOCK_MONOTONIC now, ns: the clock records carry. */
  nowNs(): number;
  /** A CLOCK_MONOTONIC time (ns) as epoch milliseconds. */
  epochMs(monoNs: number): number;
  /** Records lost so far (kernel drops and malformed records). */
  lost(): number;
  /** Readings of the processes' goroutines where they are now, with leak verdicts; absent if unavailable. */
  readonly snapshots?: LiveSnapshots;
  /** The traced executable's Go minor release (how its dumps are printed). */
  readonly goMinor?: number;
  /**
   * Labels beyond the pid that tell process `pid` apart in a fleet (host-wide mode): `exe`, and
   * `container` where it runs in one. Absent when gmon traces one executable.
   */
  labels?(pid: number): readonly (readonly [string, string])[];
  /**
   * The latest snapshot of the targets' goroutines (their state read from the targets' memory), or
   * null until the first is taken. Absent when this session takes none: the page then says so. Called
   * on every page refresh (about once a second), so it returns what was last computed, never reads
   * a target itself.
   */
  snapshot?(): Snapshot | null;
}

/**
 * What one snapshot says of the goroutines it found, by process and creation site: the leak verdicts
 * and where they are blocked now. The snapshot stage provides it; the page shows it beside each site.
 */
export interface Snapshot {
  /** When the targets' memory was read, CLOCK_MONOTONIC ns. */
  readonly takenNs: number;
  /**
   * The verdicts for creation site `site` (named as live.ts's `siteOf` names it) in process `pid`;
   * undefined when the snapshot did not look at that process or found none of the site's goroutines
   * (a site newer than the snapshot, say).
   */
  site(pid: number, site: string): SiteSnapshot | undefined;
}

/** One creation site of one process in a {@link Snapshot}. */
export interface SiteSnapshot {
  /** Goroutines created at this site that the snapshot found. */
  readonly goroutines: number;
  /** How many of them it judged leaked (verdict "goroutineleak"). */
  readonly leaked: number;
  /** Where they are blocked now, grouped by wait reason and top frame, most goroutines first. */
  readonly blocked: readonly BlockedGroup[];
}

/** Goroutines of one creation site waiting for the same thing at the same place. */
export interface BlockedGroup {
  /** The runtime's wait reason as Go prints it ("chan receive", "select", "sync.WaitGroup.Wait", ...). */
  readonly waitReason: string;
  /** Where they wait: the innermost frame outside the runtime, `func at file:line`. */
  readonly frame: string;
  readonly count: number;
}

/** Splits a `func at file:line` frame; a frame without ` at ` is all function. */
export function splitFrame(frame: string): { func: string; file: string; line: number } {
  const at = frame.indexOf(" at ");
  if (at < 0) return { func: frame, file: "", line: 0 };
  const where = frame.slice(at + 4);
  const colon = where.lastIndexOf(":");
  const line = colon < 0 ? NaN : Number(where.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(line)) return { func: frame.slice(0, at), file: where, line: 0 };
  return { func: frame.slice(0, at), file: where.slice(0, colon), line };
}

/**
 * The frames shown for a creation stack: without the runtime's creating call at the top
 * (`runtime.newproc` and its ABI wrapper for a `go` statement, the same in every stack), so the first
 * frame is the creation site.
 */
export function siteFrames(frames: readonly string[]): readonly string[] {
  const n = creatorFrames(frames);
  return n === 0 ? frames : frames.slice(n);
}
