/**
 * Reads `go tool pprof -traces` output, for the endpoint's tests.
 *
 * @module
 */

/** One trace: how many goroutines, their pid label, the frames' functions (leaf first). */
export interface Trace {
  count: number;
  pid: string;
  frames: string[];
  /** Frames pprof marks `(inline)`: inlined into the next frame, one location with it. */
  inlined: string[];
}

/** `go tool pprof -traces` output as {count, labels, frames} blocks. */
export function parseTraces(text: string): Trace[] {
  const blocks = text.split(/^-+\+-+$/m).slice(1);
  const out: Trace[] = [];
  for (const block of blocks) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) continue;
    let pid = "";
    const frames: string[] = [];
    const inlined: string[] = [];
    let count = 0;
    for (const l of lines) {
      const lab = /^\s*pid:\s*(\S+)/.exec(l);
      if (lab) {
        pid = lab[1];
        continue;
      }
      const m = /^\s*(?:(\d+)\s+)?(\S+)( \(inline\))?$/.exec(l);
      if (!m) continue;
      if (m[1] !== undefined && frames.length === 0) count = Number(m[1]);
      frames.push(m[2]);
      if (m[3]) inlined.push(m[2]);
    }
    out.push({ count, pid, frames, inlined });
  }
  return out;
}
