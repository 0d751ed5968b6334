/**
 * Where the goroutines are now, in the forms Go's own /debug/pprof/goroutine and (Go 1.26)
 * /debug/pprof/goroutineleak serve: profile.proto by current stack, the debug=1 text (counts per
 * stack), and the debug=2 dump (every goroutine as runtime.Stack prints it; for goroutineleak, the
 * leaked ones marked `(leaked)` as Go 1.26 marks them). gmon reads them from the processes, from
 * outside.
 *
 * @module
 */
import type { Frame, Goroutine } from "../snapshot/goroutine.ts";
import type { Reading } from "../snapshot/source.ts";
import { formatGoroutine } from "../snapshot/traceback.ts";
import { encodeProfile, type Location, type Sample } from "./profile.ts";
import { labelsOf, labelsText } from "./pprof.ts";
import type { StateView } from "../state/view.ts";

/** Which goroutines a profile counts. */
export type Which = "all" | "leaked";

/** The physical frames of a goroutine's stack now: inlined calls grouped with their physical frame. */
function locationsOf(g: Goroutine): Location[] {
  const out: Location[] = [];
  let pending: string[] = [];
  let k = 0;
  for (const f of g.frames ?? []) {
    pending.push(frameText(f));
    if (f.inlined) continue;
    out.push({ addr: g.pcs[k++] ?? 0, frames: pending });
    pending = [];
  }
  return out;
}

function frameText(f: Frame): string {
  return `${f.func} at ${f.file}:${f.line}`;
}

interface Group {
  pid: number;
  count: number;
  locations: Location[];
}

/** Goroutines with a stack, grouped by process and stack; most first, as Go sorts them. */
function groups(readings: readonly Reading[], which: Which): Group[] {
  const byKey = new Map<string, Group>();
  for (const { snapshot, leaked } of readings) {
    for (const g of snapshot.goroutines) {
      if (g.frames === null || (which === "leaked" && !leaked.has(g.goid))) continue;
      const key = snapshot.pid + " " + g.pcs.join(" ");
      const hit = byKey.get(key);
      if (hit !== undefined) hit.count++;
      else byKey.set(key, { pid: snapshot.pid, count: 1, locations: locationsOf(g) });
    }
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count || a.pid - b.pid);
}

/** profile.proto (uncompressed) of where the goroutines are now (`which`: every one, or the leaked). */
export function nowProfile(view: StateView, readings: readonly Reading[], which: Which): Uint8Array {
  const samples: Sample[] = groups(readings, which).map((g) => ({
    value: g.count,
    labels: labelsOf(view, g.pid),
    locations: g.locations,
  }));
  return encodeProfile(view.path, samples);
}

/** Go's debug=1 text: `NAME profile: total N`, then per stack `K @ addr...` and its frames. */
export function nowText(view: StateView, readings: readonly Reading[], which: Which): string {
  const all = groups(readings, which);
  const total = all.reduce((n, g) => n + g.count, 0);
  let out = `${which === "all" ? "goroutine" : "goroutineleak"} profile: total ${total}\n`;
  for (const g of all) {
    out += `${g.count} @` + g.locations.map((l) => " 0x" + l.addr.toString(16)).join("") + "\n";
    out += `# labels: ${labelsText(labelsOf(view, g.pid))}\n`;
    for (const loc of g.locations) {
      for (const frame of loc.frames) {
        out += `#\t0x${loc.addr.toString(16)}\t${frame.replace(" at ", "\t")}\n`;
      }
    }
    out += "\n";
  }
  return out;
}

/**
 * Go's debug=2 dump of every goroutine, a goroutine at a time (the runtime's own left out, as Go does); with `markLeaked`,
 * the leaked ones' headers say `(leaked)`. Several processes: each dump headed by its pid.
 */
export function* nowDump(
  readings: readonly Reading[],
  /** The release to print as, for a reading that doesn't say its own. */
  goMinor: number,
  nowNs: number,
  markLeaked: boolean,
): Generator<string> {
  let first = true;
  for (const { snapshot, leaked, goMinor: minor } of readings) {
    const style = { minor: minor ?? goMinor };
    if (readings.length > 1) yield `${first ? "" : "\n"}process ${snapshot.pid}:\n\n`;
    let sep = "";
    for (const g of snapshot.goroutines) {
      if (g.system) continue;
      yield sep + formatGoroutine(g, style, nowNs, markLeaked && leaked.has(g.goid) ? " (leaked)" : "");
      sep = "\n";
    }
    first = false;
  }
}
