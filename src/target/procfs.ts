/**
 * Reads of /proc for one process. Deno reserves /proc/PID/{exe,maps,...} to --allow-all; gmon already
 * holds --allow-ffi, which grants as much, so it reads them through libc instead of asking for more.
 *
 * @module
 */
import { c, cstr, errno, strerror } from "../bpf/native.ts";
import type { FileIdentity } from "../symbolize/bias.ts";
import { statPath } from "./files.ts";

const ENOENT = 2;
const ESRCH = 3;
const EPERM = 1;

/** One mapping line of /proc/PID/maps. */
export interface Mapping {
  start: number;
  end: number;
  perms: string;
  offset: number;
  /** st_dev as "major:minor" in hex, as the kernel prints it. */
  dev: string;
  inode: number;
  path: string;
}

/** Where /proc files are read: one buffer for every read (a fresh 64 KiB each time cost more than the read). */
const READ_BUFFER = new Uint8Array(1 << 16);
const DECODER = new TextDecoder();

/** The whole text of a /proc file, or null if the process (or file) does not exist. */
export function readProcFile(path: string): string | null {
  const fd = c().open(cstr(path), 0);
  if (fd < 0) {
    const err = errno();
    if (err === ENOENT || err === ESRCH) return null;
    throw new Error(`${path}: ${strerror(err)}`);
  }
  try {
    // Most /proc files fit the one buffer at once; a longer one (maps) is read in pieces, copied out.
    const chunks: Uint8Array[] = [];
    for (;;) {
      const n = Number(c().read(fd, READ_BUFFER, BigInt(READ_BUFFER.length)));
      if (n < 0) {
        const err = errno();
        if (err === ESRCH) return null;
        throw new Error(`${path}: ${strerror(err)}`);
      }
      if (n === 0) break;
      chunks.push(READ_BUFFER.slice(0, n));
    }
    if (chunks.length === 1) return DECODER.decode(chunks[0]);
    const all = new Uint8Array(chunks.reduce((a, b) => a + b.length, 0));
    let off = 0;
    for (const ch of chunks) {
      all.set(ch, off);
      off += ch.length;
    }
    return DECODER.decode(all);
  } finally {
    c().close(fd);
  }
}

/** Parses /proc/PID/maps; null if the process is gone. */
export function readMaps(pid: number): Mapping[] | null {
  const text = readProcFile(`/proc/${pid}/maps`);
  if (text === null) return null;
  const out: Mapping[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: parseInt(m[1], 16),
      end: parseInt(m[2], 16),
      perms: m[3],
      offset: parseInt(m[4], 16),
      dev: m[5],
      inode: Number(m[6]),
      path: m[7],
    });
  }
  return out;
}

/** Whether process `pid` still runs: it exists and has not exited (a zombie has, though not yet reaped). */
export function processAlive(pid: number): boolean {
  if (c().kill(pid, 0) !== 0 && errno() !== EPERM) return false;
  const st = processState(pid);
  // A zombie first thread with others alive is a process in an exec from another thread (or whose
  // first thread alone has ended): alive.
  return st !== null && ((st.state !== "Z" && st.state !== "X") || st.threads > 1);
}

/** Where /proc/PID/exe points ("... (deleted)" for a removed file); null if it can't be read. */
export function exeOf(pid: number): string | null {
  return linkOf(`/proc/${pid}/exe`);
}

/**
 * The path of the executable process `pid` runs as the process itself sees it: inside a container,
 * from the container's root (what its users know it by), not from gmon's.
 */
export function exeSeenBy(pid: number): string | null {
  const exe = exeOf(pid)?.replace(/ \(deleted\)$/, "") ?? null;
  const root = linkOf(`/proc/${pid}/root`);
  if (exe === null || root === null || root === "/" || !exe.startsWith(root + "/")) return exe;
  return exe.slice(root.length);
}

function linkOf(path: string): string | null {
  const buf = new Uint8Array(4096);
  const n = Number(c().readlink(cstr(path), buf, BigInt(buf.length)));
  return n < 0 ? null : new TextDecoder().decode(buf.subarray(0, n));
}

/** PF_KTHREAD in /proc/PID/stat's flags: a kernel thread, which has no user memory. */
const PF_KTHREAD = 0x00200000;

/**
 * A process's run state ("R", "S", "Z", ...), whether it is a kernel thread, its threads, and its start
 * time (clock ticks since boot: with the pid, names one process for good); null if gone.
 */
export function processState(
  pid: number,
): { state: string; kthread: boolean; threads: number; startTime: string } | null {
  const stat = readProcFile(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name may hold anything, parentheses too: the fields follow its last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    state: fields[0],
    kthread: (Number(fields[6]) & PF_KTHREAD) !== 0,
    threads: Number(fields[17]),
    startTime: fields[19],
  };
}

/** Pids of the processes that map `file` (run it), in increasing order. */
export function pidsRunning(file: FileIdentity): number[] {
  const out: number[] = [];
  for (const name of listProc()) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let maps: Mapping[] | null = null;
    try {
      maps = readMaps(pid);
    } catch { /* not ours to read, or gone */ }
    if (maps?.some((m) => m.inode === file.ino && m.dev === file.dev)) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}

/** offsetof(struct dirent, d_name) on x86-64 glibc. */
const D_NAME = 19;

/** The names in /proc (Deno reserves listing it to --allow-all: gmon reads it through libc). */
export function listProc(): string[] {
  const dir = c().opendir(cstr("/proc"));
  if (dir === null) throw new Error(`/proc: ${strerror(errno())}`);
  const out: string[] = [];
  try {
    for (let ent = c().readdir(dir); ent !== null; ent = c().readdir(dir)) {
      out.push(new Deno.UnsafePointerView(ent).getCString(D_NAME));
    }
  } finally {
    c().closedir(dir);
  }
  return out;
}

/** The inode of the initial pid namespace (PROC_PID_INIT_INO): gmon runs on the host's pids. */
const INIT_PID_NS_INO = 0xeffffffc;

/**
 * gmon's own pid namespace as the kernel names it inside (its nsfs device as a kernel dev_t, and inode),
 * or null in the host's: in a container without the host's pids, the probes must number processes as
 * gmon's /proc does.
 */
export function ownPidNamespace(): { dev: number; ino: number } | null {
  const st = statPath("/proc/self/ns/pid");
  if (st.ino === INIT_PID_NS_INO) return null;
  // stat's encoding (major in bits 8-19, minor in 0-7 and 20-31) to the kernel's MKDEV (major << 20).
  const major = (st.dev >>> 8) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
  return { dev: major * 2 ** 20 + minor, ino: st.ino };
}

/**
 * The id of the container process `pid` runs in, from its cgroup path as container runtimes name it
 * (`docker-ID.scope`, `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope`, `/docker/ID`,
 * `/kubepods/.../ID`: 64 hex digits); null outside containers or when it can't be read.
 */
export function containerOf(pid: number): string | null {
  const text = readProcFile(`/proc/${pid}/cgroup`);
  if (text === null) return null;
  let id: string | null = null;
  for (const line of text.split("\n")) {
    const path = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
    for (const m of path.matchAll(/(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?=\/|$)/g)) id = m[1];
  }
  return id;
}
