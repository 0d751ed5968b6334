/**
 * Keeps the probes right across deploys of a traced executable (see target/deploys.ts for what the
 * kernel reports): off while its content is rewritten, back on the new content before it next runs,
 * and on the new file too when a new one is renamed over it (the old file's processes still run the
 * old code, traced as before, until they end).
 *
 * @module
 */
import type { Logger } from "../log/slog.ts";
import type { DeployEvent, DeployWatch } from "../target/deploys.ts";
import { fileKey, type Program, type Programs } from "./programs.ts";

/** Follows the deploys of the executables it is given. */
export class Redeploys {
  readonly #watch: DeployWatch;
  readonly #programs: Programs;
  readonly #log: Logger;
  /** Programs whose new content could not be traced: said once per rewrite, not at every exec. */
  readonly #refused = new Set<Program>();

  /**
   * Host-wide mode lets go of an executable being rewritten (it has no process, or the kernel would
   * refuse the write): its next run is found by its exec, as a new program.
   */
  readonly #closeOnWrite: boolean;

  constructor(watch: DeployWatch, programs: Programs, log: Logger, closeOnWrite = false) {
    this.#watch = watch;
    this.#programs = programs;
    this.#log = log;
    this.#closeOnWrite = closeOnWrite;
  }

  /** Watches `p`'s file, and with `renames` the name it was opened by (for a new file put there). */
  add(p: Program, renames = true): void {
    this.#watch.add(p.path, p.key, renames);
  }

  /** Acts on what happened since the last call; execs waiting for gmon go on once it returns. */
  poll(): void {
    this.#watch.poll(this.#handle);
  }

  close(): void {
    this.#watch.close();
  }

  readonly #handle = (e: DeployEvent): void => {
    if (e.kind === "replaced") return this.#replaced(e.path, e.complete);
    const p = this.#programs.byKey(e.id);
    if (p === undefined) return;
    if (e.kind === "writing") {
      if (this.#closeOnWrite) {
        this.#programs.close(p);
        this.#log.info("let go: executable being rewritten", [["exe", p.exe]]);
        return;
      }
      if (p.links.length === 0) return;
      this.#programs.detach(p);
      this.#refused.delete(p);
      this.#log.warn("executable being rewritten: probes off until it is complete", [["exe", p.exe]]);
    } else if (p.links.length === 0) {
      this.#reattach(p);
    }
  };

  #reattach(p: Program): void {
    if (this.#refused.has(p)) return;
    try {
      this.#programs.reattach(p);
      this.#log.info("probes placed on the new build", [["exe", p.exe], ["go_version", p.target.goVersion]]);
    } catch (e) {
      this.#refused.add(p);
      this.#log.warn("new build not traced", [["exe", p.exe], ["reason", (e as Error).message]]);
    }
  }

  /** A file now has a traced executable's name: a new build when it is a new inode. */
  #replaced(path: string, complete: boolean): void {
    let key: string;
    try {
      key = fileKey(path);
    } catch {
      return;
    }
    if (this.#programs.byKey(key) !== undefined) return;
    const was = this.#programs.all.find((p) => p.path === path);
    try {
      const p = this.#programs.open(path, was?.exe ?? path, -1, key);
      this.add(p);
      this.#log.info("following the new build", [["exe", p.exe], ["go_version", p.target.goVersion]]);
    } catch (e) {
      // Just created, it may be empty yet: its writer's close comes next.
      if (!complete) return;
      this.#log.warn("new build not traced", [["exe", was?.exe ?? path], ["reason", (e as Error).message]]);
    }
  }

  /** Lets old builds (no longer at their path) go once their last process has ended. */
  housekeeping(): void {
    // Host-wide mode lets executables go when their processes are gone, wherever they are (fleet.ts).
    if (this.#closeOnWrite) return;
    for (const p of this.#programs.all) {
      if (p.pids.size > 0) continue;
      let current = false;
      try {
        current = fileKey(p.path) === p.key;
      } catch { /* nothing at the path now */ }
      if (!current) {
        this.#programs.close(p);
        this.#log.info("old build let go", [["exe", p.exe]]);
      }
    }
  }
}
