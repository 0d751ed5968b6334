/**
 * One run of scripts/bench-app/spawn: started waiting, something attached to it, then let go; it
 * prints its own measure (ns per goroutine, wall or CPU).
 *
 * @module
 */
import { firstLine } from "./proc.ts";

/** Something watching the program: attached once it waits, stopped once it is done. */
export interface Watcher {
  stop(): Promise<Totals> | Totals;
}

/** What a watcher saw: events, lost events, and (probes in this process) its programs' run time. */
export interface Totals {
  events: number;
  lost: number;
  programNs?: number;
  programRuns?: number;
}

export interface SpawnResult extends Partial<Totals> {
  value: number;
}

/**
 * Runs `bin args` (with `env`), calling `attach(pid)` while it waits and `before`/`after` around
 * its burst.
 */
export async function runSpawn(
  bin: string,
  args: string[],
  attach: (pid: number) => Promise<Watcher | null> | Watcher | null,
  env: Record<string, string> = {},
  around: { before?: () => void; after?: () => Promise<void> | void } = {},
): Promise<SpawnResult> {
  const app = new Deno.Command(bin, { args: ["-wait", ...args], env, stdin: "piped", stdout: "piped" })
    .spawn();
  let watcher: Watcher | null = null;
  try {
    const { rest } = await firstLine(app.stdout); // "ready"
    watcher = await attach(app.pid);
    around.before?.();
    const w = app.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const value = Number((await rest).trim());
    await app.status;
    await around.after?.();
    const totals = await watcher?.stop();
    watcher = null;
    return { value, ...totals };
  } finally {
    await watcher?.stop();
    try {
      app.kill("SIGKILL");
    } catch { /* done */ }
  }
}
