/**
 * Load biases: a position-independent executable runs at a different base in each process, so a PC
 * from process P maps to the file's link-time address by subtracting P's bias.
 *
 * @module
 */
import { statPath } from "../target/files.ts";
import { exeOf, readMaps } from "../target/procfs.ts";
import type { Segment } from "../target/wasm.ts";

/** The executable as the kernel identifies it in /proc/PID/maps. */
export interface FileIdentity {
  /** st_dev as /proc/PID/maps prints it: "fd:01". */
  dev: string;
  ino: number;
}

/** Computes and caches each process's bias for one executable. */
export class LoadBiases {
  readonly #pie: boolean;
  /** The executable, as /proc/PID/maps names it. */
  readonly file: FileIdentity;
  readonly #segments: readonly Segment[];
  readonly #byPid = new Map<number, number>();

  constructor(pie: boolean, file: FileIdentity, segments: readonly Segment[]) {
    this.#pie = pie;
    this.file = file;
    this.#segments = segments;
  }

  /**
   * The bias of process `pid`: 0 for a fixed-address executable; for PIE, read once from the process's
   * mappings. Null when the process is gone before it could be read.
   */
  of(pid: number): number | null {
    if (!this.#pie) return 0;
    const hit = this.#byPid.get(pid);
    if (hit !== undefined) return hit;
    const maps = readMaps(pid);
    if (maps === null) return null;
    // On overlayfs (a container's root) the mappings name the file of the layer beneath, not the inode
    // gmon opened: there, the executable's mappings are those under the path the process runs.
    const exe = (exeOf(pid) ?? "").replace(/ \(deleted\)$/, "");
    const own = maps.some((m) => m.inode === this.file.ino && m.dev === this.file.dev);
    for (const m of maps) {
      if (own ? m.inode !== this.file.ino || m.dev !== this.file.dev : m.path !== exe) continue;
      // The segment whose file bytes this mapping starts in: its link-time address for that offset.
      const seg = this.#segments.find((s) =>
        s.offset <= m.offset && m.offset < s.offset + Math.max(s.filesz, 1)
      );
      if (seg === undefined) continue;
      const bias = m.start - (seg.vaddr + (m.offset - seg.offset));
      this.#byPid.set(pid, bias);
      return bias;
    }
    return null;
  }

  /** Forgets an exited process. */
  forget(pid: number): void {
    this.#byPid.delete(pid);
  }
}

/** The identity /proc/PID/maps shows for the file at `path`. */
export function fileIdentity(path: string): FileIdentity {
  const st = statPath(path);
  // glibc's dev_t encoding: major in bits 8-19, minor in bits 0-7 and 20-31; maps prints both in hex.
  const major = (st.dev >>> 8) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
  const hex2 = (n: number) => n.toString(16).padStart(2, "0");
  return { dev: `${hex2(major)}:${hex2(minor)}`, ino: st.ino };
}
