/**
 * The keep-alive HTTP server of scripts/bench (scripts/bench-app/kaserver) and wrk driving it.
 *
 * @module
 */
import { firstLine } from "./proc.ts";

/** A running kaserver. */
export interface Server {
  pid: number;
  /** host:port */
  addr: string;
  stop(): void;
}

export async function startServer(bin: string): Promise<Server> {
  const child = new Deno.Command(bin, { stdout: "piped", stderr: "inherit" }).spawn();
  const { first } = await firstLine(child.stdout);
  return {
    pid: child.pid,
    addr: first.trim(),
    stop: () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}

/** What one wrk run did. */
export interface WrkResult {
  requests: number;
  perSecond: number;
  /** wrk's own CPU time (user + system), ms. */
  cpuMs: number;
}

/** `wrk -t2 -c50 -d<seconds>s` on `addr` (keep-alive, as wrk does by default). */
export async function wrk(addr: string, seconds: number): Promise<WrkResult> {
  // bash's `times` prints the CPU its children used: wrk's.
  const r = await new Deno.Command("bash", {
    args: ["-c", 'wrk -t2 -c50 -d"$1"s "http://$0/" && times', addr, String(seconds)],
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  if (r.code !== 0) throw new Error(`wrk: ${text}${new TextDecoder().decode(r.stderr)}`);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const children = text.trim().split("\n").at(-1)!.split(" ").map(seconds_);
  return { requests, perSecond, cpuMs: (children[0] + children[1]) * 1000 };
}

/** bash's `times` value, `1m2.345s`, in seconds. */
function seconds_(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}
