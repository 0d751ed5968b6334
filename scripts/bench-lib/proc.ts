/**
 * What scripts/bench reads about processes: CPU time, peak RSS, the machine's load, and medians.
 *
 * @module
 */

/** user+system CPU ms of a process so far (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const [user, system] = times(pid);
  return user + system;
}

/** system CPU ms of a process so far. */
export function sysMs(pid: number): number {
  return times(pid)[1];
}

function times(pid: number): [number, number] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [Number(f[11]) * 10, Number(f[12]) * 10];
}

/** Peak RSS of a process, KiB. */
export function rssPeakKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

/** The 1-minute load average, as `uptime` shows it: noted beside every figure (the machine is shared). */
export function load(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
}

/** How many perf events (one per attached uprobe) a process holds open. */
export function perfEvents(pid: number): number {
  let n = 0;
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      if (Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`) === "anon_inode:[perf_event]") n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `ready` every 20 ms until it holds; throws after `ms`. */
export async function until(what: string, ready: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The first line of a stream, and a promise of the rest. */
export async function firstLine(
  stream: ReadableStream<Uint8Array>,
): Promise<{ first: string; rest: Promise<string> }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  const i = buf.indexOf("\n");
  const rest = (async () => {
    let more = buf.slice(i + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { first: buf.slice(0, i), rest };
}

/** The last `n` bytes of a file (a full event log can be larger than a string may be). */
export function tail(path: string, n: number): string {
  const f = Deno.openSync(path);
  try {
    const size = f.statSync().size;
    f.seekSync(Math.max(0, size - n), Deno.SeekMode.Start);
    const buf = new Uint8Array(Math.min(n, size));
    let off = 0;
    while (off < buf.length) {
      const r = f.readSync(buf.subarray(off));
      if (r === null) break;
      off += r;
    }
    return new TextDecoder().decode(buf.subarray(0, off));
  } finally {
    f.close();
  }
}

/** A TCP port nobody listens on now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
