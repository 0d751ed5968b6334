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
    let count = 0;
    for (const l of lines) {
      const lab = /^\s*pid:\s*(\S+)/.exec(l);
      if (lab) pid = lab[1];
      else {
        const m = /^\s*(\d+)\s+(\S+)$/.exec(l);
        if (m && frames.length === 0) {
          count = Number(m[1]);
          frames.push(m[2]);
        } else frames.push(l.trim());
      }
    }
    out.push({ count, pid, frames });
  }
  return out;
}
