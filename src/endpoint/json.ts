/**
 * /goroutines: every live goroutine as JSON: where it was created (gmon's creation stack, or for a
 * goroutine alive before gmon attached, its go statement) and where it is now (read from the process:
 * status, wait reason, what it waits on, its current stack, the leak verdict).
 *
 * @module
 */
import { monotonicNs } from "../bpf/native.ts";
import type { Goroutine } from "../snapshot/goroutine.ts";
import type { Reading } from "../snapshot/source.ts";
import type { StateView } from "../state/view.ts";

/** One live goroutine as /goroutines lists it. */
export interface GoroutineJson {
  id: number;
  pid: number;
  /** RFC 3339, UTC, milliseconds; null for a goroutine alive before gmon attached. */
  created_at: string | null;
  /** Seconds since creation; for one alive before gmon attached, since gmon found it (a lower bound). */
  age_seconds: number;
  /** Alive before gmon attached: its creation was not seen. */
  preexisting: boolean;
  site: string;
  stack_id: number;
  /** The creation stack, `func at file:line`, innermost first, starting at runtime.newproc. */
  stack: readonly string[];
  /** Now: "chan receive", "running", "runnable", ... as Go's dump headers say; null when not read. */
  status: string | null;
  /** The wait reason ("" when not waiting); null when not read. */
  wait_reason: string | null;
  /** How long it has been blocked as the runtime counts it (set by a GC), seconds; null when unknown. */
  waiting_seconds: number | null;
  /** Addresses of the channels it is blocked on (hex). */
  waiting_for: string[];
  /** Judged leaked (see the README: what "leaked" means). */
  leaked: boolean;
  /** Its stack now, `func at file:line`, innermost first; null when running or not read. */
  current_stack: string[] | null;
}

/** Every live goroutine, oldest first. */
export async function liveGoroutines(view: StateView): Promise<GoroutineJson[]> {
  const readings = view.snapshots === undefined ? [] : await view.snapshots.current().catch(() => []);
  const now = view.nowNs();
  const mono = monotonicNs();
  const byKey = index(readings);
  const rows: GoroutineJson[] = [];
  view.live.forEachLive((pid, goid, born, stackId, adopted) => {
    const hit = byKey.get(pid)?.get(goid);
    rows.push({
      id: goid,
      pid,
      created_at: adopted ? null : new Date(view.epochMs(born)).toISOString(),
      age_seconds: Math.max(0, Math.round((now - born) / 1e6)) / 1e3,
      preexisting: adopted,
      site: view.live.siteOfStack(stackId),
      stack_id: stackId,
      stack: view.stack(stackId)?.frames ?? [],
      ...nowFields(hit?.g, hit?.leaked ?? false, mono),
    });
  });
  return rows.sort((a, b) => b.age_seconds - a.age_seconds || a.pid - b.pid || a.id - b.id);
}

/** The "now" fields of a row. */
function nowFields(g: Goroutine | undefined, leaked: boolean, mono: number) {
  return {
    status: g?.state ?? null,
    wait_reason: g?.waitReason ?? null,
    waiting_seconds: g !== undefined && g.waitSinceNs !== 0
      ? Math.max(0, Math.round((mono - g.waitSinceNs) / 1e6)) / 1e3
      : null,
    waiting_for: g?.waitingOn.map((c) => "0x" + c.toString(16)) ?? [],
    leaked,
    current_stack: g?.frames?.map((f) => `${f.func} at ${f.file}:${f.line}`) ?? null,
  };
}

function index(readings: readonly Reading[]): Map<number, Map<number, { g: Goroutine; leaked: boolean }>> {
  const out = new Map<number, Map<number, { g: Goroutine; leaked: boolean }>>();
  for (const { snapshot, leaked } of readings) {
    const m = new Map<number, { g: Goroutine; leaked: boolean }>();
    for (const g of snapshot.goroutines) m.set(g.goid, { g, leaked: leaked.has(g.goid) });
    out.set(snapshot.pid, m);
  }
  return out;
}

/** The /goroutines body. */
export async function goroutinesJson(view: StateView): Promise<string> {
  return JSON.stringify(await liveGoroutines(view)) + "\n";
}
