/**
 * A reading by creation site, for the page: per process and site, how many goroutines the reading found,
 * how many it judged leaked, and where they are blocked now (wait reason and the innermost frame of the
 * program's own code), most goroutines first.
 *
 * @module
 */
import type { BlockedGroup, SiteSnapshot, Snapshot } from "../state/view.ts";
import type { Goroutine } from "./goroutine.ts";
import type { Reading } from "./source.ts";

/** Where a goroutine waits, as the page shows it: its first frame outside the runtime. */
function blockedAt(g: Goroutine): string {
  const frames = g.frames ?? [];
  const f = frames.find((f) => !f.func.startsWith("runtime.") && !f.func.startsWith("internal/")) ??
    frames[0];
  return f === undefined ? "?" : `${f.func} at ${f.file}:${f.line}`;
}

/** `readings` grouped by process and creation site (named from each goroutine's go statement, which only its process's executable can place). */
export function bySite(
  readings: readonly Reading[],
  siteOfGopc: (pid: number, gopc: number) => string,
  takenNs: number,
): Snapshot {
  const sites = new Map<string, { goroutines: number; leaked: number; blocked: Map<string, BlockedGroup> }>();
  for (const { snapshot, leaked } of readings) {
    for (const g of snapshot.goroutines) {
      const key = `${snapshot.pid} ${siteOfGopc(snapshot.pid, g.gopc)}`;
      let s = sites.get(key);
      if (s === undefined) {
        s = { goroutines: 0, leaked: 0, blocked: new Map() };
        sites.set(key, s);
      }
      s.goroutines++;
      if (leaked.has(g.goid)) s.leaked++;
      if (g.frames === null || g.waitReason === "") continue;
      const frame = blockedAt(g);
      const at = `${g.waitReason}\n${frame}`;
      const b = s.blocked.get(at);
      if (b !== undefined) s.blocked.set(at, { ...b, count: b.count + 1 });
      else s.blocked.set(at, { waitReason: g.waitReason, frame, count: 1 });
    }
  }
  const out = new Map<string, SiteSnapshot>();
  for (const [key, s] of sites) {
    const blocked = [...s.blocked.values()].sort((a, b) => b.count - a.count);
    out.set(key, { goroutines: s.goroutines, leaked: s.leaked, blocked });
  }
  return { takenNs, site: (pid, site) => out.get(`${pid} ${site}`) };
}
