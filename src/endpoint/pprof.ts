/**
 * Live goroutines by creation stack in the forms Go's /debug/pprof/goroutine serves: a profile.proto
 * (`go tool pprof` reads it), the debug=1 text (counts per stack) and the debug=2 text (every goroutine).
 *
 * Where Go's profile counts goroutines by their current stack, gmon's counts them by the stack that
 * created them, which it saw whole. Stacks start at the `go` statement's frame (runtime.newproc, the
 * same in every stack, is left out) so that pprof's leaf, the "flat" column, names creation sites.
 * As Go writes them, each physical frame is one Location at its address (in the executable's file, as
 * looked up: a return address less one), its inlined calls Lines of that Location, innermost first.
 *
 * @module
 */
import { creatorFrames } from "../state/live.ts";
import { siteFrames, splitFrame, type StateView } from "../state/view.ts";
import type { StackEntry } from "../symbolize/stacks.ts";
import { encodeProfile, type Location } from "./profile.ts";
import { formatAge } from "../log/slog.ts";

/** One sample: live goroutines of one creation stack in one process. */
interface Sample {
  pid: number;
  stackId: number;
  live: number;
  locations: Location[];
}

/** The stack's physical frames from the `go` statement's on (the creator frames left out). */
function locationsOf(entry: StackEntry | undefined): Location[] {
  if (entry === undefined) return [];
  let skip = creatorFrames(entry.frames);
  const out: Location[] = [];
  let at = 0;
  for (const pc of entry.pcs) {
    const frames = entry.frames.slice(at + Math.min(skip, pc.frames), at + pc.frames);
    skip = Math.max(0, skip - pc.frames);
    at += pc.frames;
    if (frames.length > 0) out.push({ addr: pc.addr, frames });
  }
  return out;
}

function samples(view: StateView): Sample[] {
  const out: Sample[] = [];
  for (const s of view.live.stacks()) {
    if (s.live <= 0) continue;
    out.push({
      pid: s.pid,
      stackId: s.stackId,
      live: s.live,
      locations: locationsOf(view.stack(s.stackId)),
    });
  }
  // As Go: most goroutines first; then stable by pid and stack.
  return out.sort((a, b) => b.live - a.live || a.pid - b.pid || a.stackId - b.stackId);
}

/** A sample's labels: its pid, and in a fleet its executable and container. */
export function labelsOf(view: StateView, pid: number): [string, string][] {
  return [["pid", String(pid)], ...(view.labels?.(pid) ?? []).map(([k, v]): [string, string] => [k, v])];
}

/** Labels as Go's debug=1 text prints them: `{"pid":"7","exe":"/app"}`. */
export function labelsText(labels: readonly (readonly [string, string])[]): string {
  return JSON.stringify(Object.fromEntries(labels));
}

/** The goroutine profile by creation stack as profile.proto bytes (not compressed). */
export function goroutineProfile(view: StateView, nowEpochMs = Date.now()): Uint8Array {
  return encodeProfile(
    view.path,
    samples(view).map((s) => ({
      value: s.live,
      labels: labelsOf(view, s.pid),
      locations: s.locations,
    })),
    nowEpochMs,
  );
}

/** Go's debug=1 text: `goroutine profile: total N`, then per stack `K @ addr...` and its frames. */
export function goroutineText(view: StateView): string {
  const all = samples(view);
  let total = 0;
  for (const s of all) total += s.live;
  let out = `goroutine profile: total ${total}\n`;
  for (const s of all) {
    out += `${s.live} @` + s.locations.map((l) => " 0x" + l.addr.toString(16)).join("") + "\n";
    out += `# labels: ${labelsText(labelsOf(view, s.pid))}\n`;
    for (const loc of s.locations) {
      for (const frame of loc.frames) {
        const { func, file, line } = splitFrame(frame);
        out += `#\t0x${loc.addr.toString(16)}\t${func}\t${file}:${line}\n`;
      }
    }
    out += "\n";
  }
  return out;
}

/**
 * Go's debug=2 shape for every live goroutine, a goroutine at a time (see src/endpoint/stream.ts): `goroutine N [age D, pid P]:`, then `created by SITE`
 * and the creator's stack, each frame as `func()` and a tab-indented `file:line`.
 */
export function* goroutineDump(view: StateView): Generator<string> {
  const now = view.nowNs();
  const rows: { pid: number; goid: number; born: number; stackId: number }[] = [];
  view.live.forEachLive((pid, goid, born, stackId) => rows.push({ pid, goid, born, stackId }));
  rows.sort((a, b) => a.pid - b.pid || a.goid - b.goid);
  const texts = new Map<number, string>();
  for (const r of rows) {
    let text = texts.get(r.stackId);
    if (text === undefined) {
      const frames = siteFrames(view.stack(r.stackId)?.frames ?? []);
      text = frames.map((frame, i) => {
        const { func, file, line } = splitFrame(frame);
        return (i === 0 ? `created by ${func}` : `${func}()`) + `\n\t${file}:${line}\n`;
      }).join("");
      texts.set(r.stackId, text);
    }
    yield `goroutine ${r.goid} [age ${formatAge(now - r.born)}, pid ${r.pid}]:\n${text}\n`;
  }
}
