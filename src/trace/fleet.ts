/**
 * Host-wide mode (-all): every Go program on the host, found in /proc at start and then from the exec
 * records of the ring (no polling). Each executable is opened and its probes attached once, by inode,
 * through /proc/PID/exe, whatever path or mount namespace its processes see it by (containers
 * included); it is let go a little after its last process has ended. Executables that are not Go are
 * passed over quietly, once each; Go ones gmon can't trace are said once at WARN and passed over.
 *
 * @module
 */
import type { Logger } from "../log/slog.ts";
import { containerOf, exeSeenBy, listProc } from "../target/procfs.ts";
import { surelyNotGo } from "../target/target.ts";
import { globToRegExp } from "./glob.ts";
import { exeKey, type Processes } from "./processes.ts";
import type { Program, Programs } from "./programs.ts";

/**
 * How long an executable stays attached after its last process ended: programs run again and again
 * (a cron job, a CLI in a loop) are not reopened every time, and their next run is seen from its start.
 */
const LINGER_MS = 5000;

/** Which processes host-wide mode traces. */
export interface FleetFilter {
  /** A glob on the executable's path as its process sees it; null: any. */
  exe: string | null;
  /** The start of a container id; null: any process, in a container or not. */
  container: string | null;
}

/** Finds and follows the Go programs of the host. */
export class Fleet {
  readonly #programs: Programs;
  readonly #processes: Processes;
  readonly #log: Logger;
  readonly #exe: RegExp | null;
  readonly #container: string | null;
  /** Executables passed over (not Go, or not traceable), by inode: looked at once. */
  readonly #skipped = new Set<string>();
  /** When each program's last process was seen gone. */
  readonly #idleSince = new Map<Program, number>();
  /** Called for each executable newly attached, with the process it was found by (traced by now). */
  onOpen: (p: Program, pid: number) => void = () => {};

  constructor(programs: Programs, processes: Processes, log: Logger, filter: FleetFilter) {
    this.#programs = programs;
    this.#processes = processes;
    this.#log = log;
    this.#exe = filter.exe === null ? null : globToRegExp(filter.exe);
    this.#container = filter.container;
    processes.admit = (pid, key) => this.admit(pid, key);
  }

  /** Looks at every process running now. */
  scan(): void {
    for (const name of listProc()) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid <= 0 || pid === Deno.pid) continue;
      const key = exeKey(pid);
      if (key !== null && this.#processes.programOf(pid) === undefined) this.admit(pid, key);
    }
  }

  /** Traces process `pid` (running the executable `key`) if it is a Go program the filters let in. */
  admit(pid: number, key: string): boolean {
    if (this.#skipped.has(key)) return false;
    const exe = exeSeenBy(pid) ?? "";
    if (this.#exe !== null && !this.#exe.test(exe)) return false;
    const container = containerOf(pid);
    if (this.#container !== null && !(container?.startsWith(this.#container) ?? false)) return false;
    const known = this.#programs.byKey(key);
    const p = known ?? this.#open(pid, key, exe);
    if (p === null) return false;
    this.#processes.add(pid, p, { exe, container });
    this.#idleSince.delete(p);
    if (known === undefined) this.onOpen(p, pid);
    return true;
  }

  #open(pid: number, key: string, exe: string): Program | null {
    // /proc/PID/exe is the very file the process runs, seen from the host whatever its mount namespace.
    const path = `/proc/${pid}/exe`;
    try {
      if (surelyNotGo(path)) {
        this.#skipped.add(key);
        return null;
      }
      const p = this.#programs.open(path, exe, -1, key);
      this.#log.info("tracing", [["exe", exe], ["go_version", p.target.goVersion], ["pid", pid]]);
      return p;
    } catch (e) {
      const why = (e as Error).message;
      // The process may be gone already (a short-lived one): nothing to say, nothing to remember.
      if (exeKey(pid) !== key) return null;
      this.#skipped.add(key);
      if (!/not a Go program/.test(why)) this.#log.warn("can't trace", [["exe", exe], ["reason", why]]);
      return null;
    }
  }

  /** Lets go of executables whose processes have all ended (a little while ago). */
  housekeeping(now = Date.now()): void {
    for (const p of this.#programs.all) {
      if (p.pids.size > 0) continue;
      const since = this.#idleSince.get(p);
      if (since === undefined) this.#idleSince.set(p, now);
      else if (now - since >= LINGER_MS) {
        this.#idleSince.delete(p);
        this.#programs.close(p);
        this.#log.info("let go", [["exe", p.exe]]);
      }
    }
  }
}
