/**
 * /goroutines: every live goroutine as JSON, with its creation site and stack.
 *
 * @module
 */
import type { StateView } from "../state/view.ts";

/** One live goroutine as /goroutines lists it. */
export interface GoroutineJson {
  id: number;
  pid: number;
  /** RFC 3339, UTC, milliseconds. */
  created_at: string;
  age_seconds: number;
  site: string;
  stack_id: number;
  /** `func at file:line`, innermost first, starting at runtime.newproc. */
  stack: readonly string[];
}

/** Every live goroutine, oldest first. */
export function liveGoroutines(view: StateView): GoroutineJson[] {
  const now = view.nowNs();
  const rows: GoroutineJson[] = [];
  view.live.forEachLive((pid, goid, born, stackId) => {
    const stack = view.stack(stackId)?.frames ?? [];
    rows.push({
      id: goid,
      pid,
      created_at: new Date(view.epochMs(born)).toISOString(),
      age_seconds: Math.max(0, Math.round((now - born) / 1e6)) / 1e3,
      site: view.live.siteOfStack(stackId),
      stack_id: stackId,
      stack,
    });
  });
  return rows.sort((a, b) => b.age_seconds - a.age_seconds || a.pid - b.pid || a.id - b.id);
}

/** The /goroutines body. */
export function goroutinesJson(view: StateView): string {
  return JSON.stringify(liveGoroutines(view)) + "\n";
}
