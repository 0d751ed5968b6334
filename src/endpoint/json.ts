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
import { streamParts } from "./stream.ts";
import { BadQuery } from "./api.ts";

/** One live goroutine as /goroutines lists it. */
export interface GoroutineJson {
  id: number;
  pid: number;
  /** In host-wide mode: the process's executable, and its container id ("" outside containers). */
  exe?: string;
  container?: string;
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

/** The order and paging of /goroutines: oldest first, then by process and id. */
export interface Page {
  /** At most this many rows (all when absent). */
  limit?: number;
  /** Start after the row this cursor names (from `x-next-after` of the previous page). */
  after?: string;
}

/** A goroutine's place in the order: when gmon first knew it, pid, goid. */
interface Key {
  born: number;
  pid: number;
  goid: number;
  stackId: number;
  adopted: boolean;
}

function compare(a: Key, b: Key): number {
  return a.born - b.born || a.pid - b.pid || a.goid - b.goid;
}

/** The cursor naming `k` in the order. */
function cursorOf(k: Key): string {
  return `${k.born}.${k.pid}.${k.goid}`;
}

function parseCursor(c: string): Key | null {
  const m = /^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\.(\d+)\.(\d+)$/.exec(c);
  return m === null
    ? null
    : { born: Number(m[1]), pid: Number(m[2]), goid: Number(m[3]), stackId: 0, adopted: false };
}

/** The live goroutines' keys in the order, the page asked for; `next`: the cursor of the next page. */
function keys(view: StateView, page: Page): { rows: Key[]; next: string | null } {
  const all: Key[] = [];
  view.live.forEachLive((pid, goid, born, stackId, adopted) =>
    all.push({ born, pid, goid, stackId, adopted })
  );
  all.sort(compare);
  let from = 0;
  if (page.after !== undefined) {
    const after = parseCursor(page.after);
    if (after === null) {
      throw new BadQuery(`bad after: ${JSON.stringify(page.after)} is not a cursor from x-next-after`);
    }
    // The first row after the cursor (which may have exited since).
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(all[mid], after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    from = lo;
  }
  const to = page.limit === undefined ? all.length : Math.min(all.length, from + page.limit);
  const rows = all.slice(from, to);
  return { rows, next: to < all.length && rows.length > 0 ? cursorOf(rows[rows.length - 1]) : null };
}

/** The rows of a page, made one by one (a million are never all in memory at once), and the next cursor. */
async function goroutineRows(
  view: StateView,
  page: Page,
): Promise<{ rows: Iterable<GoroutineJson>; next: string | null }> {
  const { rows: order, next } = keys(view, page);
  const readings = view.snapshots === undefined ? [] : await view.snapshots.current().catch(() => []);
  const now = view.nowNs();
  const mono = monotonicNs();
  const byKey = index(readings);
  // The channels this page's goroutines wait on, read now for them alone.
  for (const { snapshot } of readings) {
    const mine = order.filter((k) => k.pid === snapshot.pid).flatMap((k) =>
      byKey.get(k.pid)?.get(k.goid)?.g ?? []
    );
    view.snapshots?.channels(snapshot.pid, mine);
  }
  const fleet = fleetFields(view);
  function* rows(): Generator<GoroutineJson> {
    for (const k of order) {
      const hit = byKey.get(k.pid)?.get(k.goid);
      yield {
        id: k.goid,
        pid: k.pid,
        ...fleet(k.pid),
        created_at: k.adopted ? null : new Date(view.epochMs(k.born)).toISOString(),
        age_seconds: Math.max(0, Math.round((now - k.born) / 1e6)) / 1e3,
        preexisting: k.adopted,
        site: view.live.siteOfStack(k.stackId),
        stack_id: k.stackId,
        stack: view.stack(k.stackId)?.frames ?? [],
        ...nowFields(hit?.g, hit?.leaked ?? false, mono),
      };
    }
  }
  return { rows: rows(), next };
}
/** A row's `exe` and `container` by its pid, in host-wide mode only (looked up once per process). */
function fleetFields(view: StateView): (pid: number) => { exe?: string; container?: string } {
  if (view.labels === undefined) return () => ({});
  const byPid = new Map<number, { exe: string; container: string }>();
  return (pid) => {
    let fields = byPid.get(pid);
    if (fields === undefined) {
      const l = new Map(view.labels!(pid));
      fields = { exe: l.get("exe") ?? "", container: l.get("container") ?? "" };
      byPid.set(pid, fields);
    }
    return fields;
  };
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

/** The /goroutines answer: a JSON array streamed row by row; `x-next-after` names the next page. */
export async function goroutinesResponse(view: StateView, page: Page = {}): Promise<Response> {
  const { rows, next } = await goroutineRows(view, page);
  function* parts(): Generator<string> {
    yield "[";
    let first = true;
    for (const r of rows) {
      yield (first ? "" : ",") + JSON.stringify(r);
      first = false;
    }
    yield "]\n";
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (next !== null) headers["x-next-after"] = next;
  return streamParts(parts(), { headers });
}
