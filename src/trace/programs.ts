/**
 * The executables gmon traces: each one file (an inode), opened once, its probes attached once for all
 * of its processes, its stacks symbolized against its own image. There is one in `-path` mode, more
 * after an executable was replaced by a new file (`mv` deploys: the old one's processes still run),
 * and as many as the host runs in host-wide mode.
 *
 * Probes carry a global index in their attach cookie, echoed by every record: a record finds its probe
 * site, and so its executable, without a lookup by pid.
 *
 * @module
 */
import type { Probes, ProbeSpec } from "../bpf/probes.ts";
import { Flags } from "../bpf/record.ts";
import type { Encoding } from "../log/slog.ts";
import { SnapshotReader } from "../snapshot/read.ts";
import { type FileIdentity, fileIdentity, LoadBiases } from "../symbolize/bias.ts";
import { type StackRegistry, StackTable } from "../symbolize/stacks.ts";
import { openTarget, type Target } from "../target/target.ts";
import type { Segment } from "../target/wasm.ts";
import type { ProbeSite } from "./records.ts";

/** One traced executable. */
export interface Program {
  /** Its inode, "dev:ino": what identifies it whatever path or mount namespace it is seen through. */
  readonly key: string;
  /** The path gmon opens and attaches it by (the user's -path, or /proc/PID/exe). */
  readonly path: string;
  /** Its name for people and labels: a real path. */
  readonly exe: string;
  target: Target;
  stacks: StackTable;
  biases: LoadBiases;
  /** Reads its processes' goroutines; null when its release's layout is unknown (said at WARN). */
  reader: SnapshotReader | null;
  readonly segments: Segment[];
  /** Its probe sites, and the global index of the first. */
  sites: ProbeSite[];
  base: number;
  /** Attached links; empty while detached (its content being rewritten). */
  links: Deno.PointerObject[];
  /** Processes seen running it. */
  readonly pids: Set<number>;
  /** Which process its probes are limited to; -1: every process. */
  readonly pid: number;
}

/** The inode key of the file at `path`: its device and inode, as /proc/PID/maps names them. */
export function fileKey(path: string): string {
  const id = fileIdentity(path);
  return `${id.dev}:${id.ino}`;
}

function identityOf(key: string): FileIdentity {
  const cut = key.lastIndexOf(":");
  return { dev: key.slice(0, cut), ino: Number(key.slice(cut + 1)) };
}

/** The traced executables, their probes and their global probe indices. */
export class Programs {
  readonly #probes: Probes;
  readonly #registry: StackRegistry;
  readonly #enc: Encoding;
  readonly #byKey = new Map<string, Program>();
  /** Probe sites by global index; undefined where a program was closed (reused later). */
  readonly #sites: (ProbeSite | undefined)[] = [];
  readonly #onSnapshotError: (exe: string, why: string) => void;

  constructor(
    probes: Probes,
    registry: StackRegistry,
    enc: Encoding,
    onSnapshotError: (exe: string, why: string) => void,
  ) {
    this.#probes = probes;
    this.#registry = registry;
    this.#enc = enc;
    this.#onSnapshotError = onSnapshotError;
  }

  /** The probe site of a global index (a record's). */
  readonly site = (index: number): ProbeSite | undefined => this.#sites[index];

  get all(): Program[] {
    return [...this.#byKey.values()];
  }

  byKey(key: string): Program | undefined {
    return this.#byKey.get(key);
  }

  /**
   * Opens the executable at `path` (named `exe`), places and attaches its probes for process `pid`
   * (-1: every process); `target`: the file already opened. Throws a one-line error naming the problem; nothing stays attached then.
   */
  open(path: string, exe: string, pid: number, key = fileKey(path), target = openTarget(path)): Program {
    const info = target.image.info();
    const p: Program = {
      key,
      path,
      exe,
      target,
      stacks: new StackTable((pcs) => target.image.symbolize(pcs), this.#enc, this.#registry),
      biases: new LoadBiases(info.pie, identityOf(key), info.segments),
      reader: this.#reader(target, exe),
      segments: info.segments,
      sites: [],
      base: 0,
      links: [],
      pids: new Set(),
      pid,
    };
    this.#attach(p);
    this.#byKey.set(key, p);
    return p;
  }

  /** Takes `p`'s probes off (its file is being rewritten: the breakpoints would land in new code). */
  detach(p: Program): void {
    for (const link of p.links.splice(0)) this.#probes.detach(link);
  }

  /** Opens `p`'s file again (new content, same inode) and puts probes on it, as placed for it. */
  reattach(p: Program): void {
    this.detach(p);
    this.#free(p);
    const target = openTarget(p.path);
    p.target = target;
    p.stacks = new StackTable((pcs) => target.image.symbolize(pcs), this.#enc, this.#registry);
    p.biases = new LoadBiases(target.image.info().pie, identityOf(p.key), target.image.info().segments);
    p.reader = this.#reader(target, p.exe);
    this.#attach(p);
  }

  /** Detaches `p` and forgets it (its last process is gone). */
  close(p: Program): void {
    this.detach(p);
    this.#free(p);
    this.#byKey.delete(p.key);
  }

  #attach(p: Program): void {
    const specs = p.target.probes;
    p.base = this.#room(specs.length);
    if (p.base + specs.length - 1 > Flags.probeMask) throw new Error("too many probes attached at once");
    const unknown = p.stacks.fixed([]);
    p.sites = specs.map((s, i): ProbeSite => {
      const spec: ProbeSpec = { ...s, index: p.base + i };
      return {
        spec,
        key: p.key,
        stacks: p.stacks,
        biasOf: (pid) => p.biases.of(pid),
        exitStack: s.program === "gmon_exit" ? p.stacks.fixed([s.addr]) : unknown,
      };
    });
    try {
      for (const site of p.sites) p.links.push(this.#probes.attach(p.path, p.pid, site.spec));
    } catch (e) {
      this.detach(p);
      throw new Error(`${p.exe}: ${(e as Error).message}`);
    }
    p.sites.forEach((site, i) => this.#sites[p.base + i] = site);
  }

  #free(p: Program): void {
    for (let i = 0; i < p.sites.length; i++) this.#sites[p.base + i] = undefined;
    p.stacks.release();
  }

  /** The first index of `n` free consecutive ones. */
  #room(n: number): number {
    let run = 0;
    for (let i = 0; i < this.#sites.length; i++) {
      run = this.#sites[i] === undefined ? run + 1 : 0;
      if (run === n) return i - n + 1;
    }
    return this.#sites.length - run;
  }

  #reader(target: Target, exe: string): SnapshotReader | null {
    try {
      return new SnapshotReader(target.image, target.release);
    } catch (e) {
      this.#onSnapshotError(exe, (e as Error).message);
      return null;
    }
  }
}
