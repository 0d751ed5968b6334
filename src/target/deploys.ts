/**
 * Deploys of a traced executable, seen as they happen:
 *
 * - in place (`cp new app`: the same inode, new content): fanotify reports the write (FAN_MODIFY) and the
 *   writer's close (FAN_CLOSE_WRITE), and holds every exec of the file (FAN_OPEN_EXEC_PERM) until gmon
 *   answers. The kernel refuses to write a file that a process runs (ETXTBSY) and to run one open for
 *   writing, so no code runs while it changes; gmon takes its probes off at the first write and puts them
 *   on the new content before letting the next exec go on.
 * - by rename (`mv new app`: a new inode at the path): inotify on the directory reports the new file
 *   under the executable's name.
 *
 * Both through libc: Deno has no binding for either.
 *
 * @module
 */
import { c, cstr, errno, strerror } from "../bpf/native.ts";

const FAN_CLOEXEC = 0x1;
const FAN_NONBLOCK = 0x2;
const FAN_CLASS_CONTENT = 0x4;
const FAN_MARK_ADD = 0x1;
const FAN_MARK_REMOVE = 0x2;
const FAN_MODIFY = 0x2;
const FAN_CLOSE_WRITE = 0x8;
const FAN_OPEN_EXEC_PERM = 0x40000;
const FAN_ALLOW = 0x1;
const O_RDONLY = 0;
const AT_FDCWD = -100;
const META_LEN = 24;
const IN_NONBLOCK = 0x800;
const IN_CLOEXEC = 0x80000;
const IN_CREATE = 0x100;
const IN_MOVED_TO = 0x80;
const IN_CLOSE_WRITE = 0x8;
const EAGAIN = 11;

/** What happened to a watched executable. */
export type DeployEvent =
  /** Its content is being rewritten (the same inode): probes must come off. */
  | { kind: "writing"; id: string }
  /** A writer closed it: the content may be final. */
  | { kind: "written"; id: string }
  /** Something is about to run it: answered (allowed) after the handler returns. */
  | { kind: "exec"; id: string; pid: number }
  /**
   * A file appeared under the watched path's name (a rename or a new file): maybe a new inode.
   * `complete`: renamed there or closed by its writer (not just created, possibly still empty).
   */
  | { kind: "replaced"; path: string; complete: boolean };

/** Watches executables (by path, marked on their inode) and their directories. */
export class DeployWatch {
  readonly #fan: number;
  readonly #ino: number;
  /** fanotify reports an inode as an fd: its identity "dev:ino" tells which executable. */
  readonly #names = new Map<number, string>();
  readonly #dirs = new Map<number, { dir: string; names: Set<string> }>();
  readonly #buf = new Uint8Array(64 * 1024);

  /** Throws a one-line error when the kernel refuses (fanotify needs CAP_SYS_ADMIN). */
  constructor() {
    this.#fan = c().fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_CONTENT, O_RDONLY);
    if (this.#fan < 0) throw new Error(`fanotify: ${strerror(errno())}`);
    this.#ino = c().inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (this.#ino < 0) {
      c().close(this.#fan);
      throw new Error(`inotify: ${strerror(errno())}`);
    }
  }

  /**
   * Watches the file at `path` (its current inode, named `id`), and with `renames` its directory for
   * a new file put under its name.
   */
  add(path: string, id: string, renames = true): void {
    const mask = BigInt(FAN_MODIFY | FAN_CLOSE_WRITE | FAN_OPEN_EXEC_PERM);
    if (c().fanotify_mark(this.#fan, FAN_MARK_ADD, mask, AT_FDCWD, cstr(path)) !== 0) {
      throw new Error(`watch ${path}: ${strerror(errno())}`);
    }
    this.#names.set(inodeKey(path), id);
    if (!renames) return;
    const slash = path.lastIndexOf("/");
    const dir = slash <= 0 ? "/" : path.slice(0, slash);
    const wd = c().inotify_add_watch(this.#ino, cstr(dir), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
    if (wd >= 0) {
      const entry = this.#dirs.get(wd) ?? { dir, names: new Set<string>() };
      entry.names.add(path.slice(slash + 1));
      this.#dirs.set(wd, entry);
    }
  }

  /** Stops watching the file at `path` (the inode it names now). */
  remove(path: string): void {
    const mask = BigInt(FAN_MODIFY | FAN_CLOSE_WRITE | FAN_OPEN_EXEC_PERM);
    c().fanotify_mark(this.#fan, FAN_MARK_REMOVE, mask, AT_FDCWD, cstr(path));
  }

  /**
   * Hands every pending event to `handle`, in order; exec permission requests are allowed once
   * `handle` returns (it must put the probes right first).
   */
  poll(handle: (e: DeployEvent) => void): void {
    for (;;) {
      const n = Number(c().read(this.#fan, this.#buf, BigInt(this.#buf.length)));
      if (n <= 0) {
        if (n < 0 && errno() !== EAGAIN) throw new Error(`fanotify read: ${strerror(errno())}`);
        break;
      }
      const v = new DataView(this.#buf.buffer, 0, n);
      for (let at = 0; at + META_LEN <= n;) {
        const len = v.getUint32(at, true);
        const mask = Number(v.getBigUint64(at + 8, true));
        const fd = v.getInt32(at + 16, true);
        const pid = v.getInt32(at + 20, true);
        try {
          const id = this.#names.get(fdKey(fd)) ?? "";
          if (mask & FAN_MODIFY) handle({ kind: "writing", id });
          if (mask & FAN_CLOSE_WRITE) handle({ kind: "written", id });
          if (mask & FAN_OPEN_EXEC_PERM) {
            try {
              handle({ kind: "exec", id, pid });
            } finally {
              this.#allow(fd);
            }
          }
        } finally {
          if (fd >= 0) c().close(fd);
        }
        at += Math.max(len, META_LEN);
      }
    }
    this.#pollDirs(handle);
  }

  #pollDirs(handle: (e: DeployEvent) => void): void {
    for (;;) {
      const n = Number(c().read(this.#ino, this.#buf, BigInt(this.#buf.length)));
      if (n <= 0) break;
      const v = new DataView(this.#buf.buffer, 0, n);
      for (let at = 0; at + 16 <= n;) {
        const wd = v.getInt32(at, true);
        const mask = v.getUint32(at + 4, true);
        const len = v.getUint32(at + 12, true);
        const raw = this.#buf.subarray(at + 16, at + 16 + len);
        const end = raw.indexOf(0);
        const name = new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end));
        const entry = this.#dirs.get(wd);
        if (entry?.names.has(name)) {
          handle({ kind: "replaced", path: `${entry.dir}/${name}`, complete: (mask & IN_CREATE) === 0 });
        }
        at += 16 + len;
      }
    }
  }

  #allow(fd: number): void {
    const resp = new Uint8Array(8);
    const v = new DataView(resp.buffer);
    v.setInt32(0, fd, true);
    v.setUint32(4, FAN_ALLOW, true);
    c().write(this.#fan, resp, 8n);
  }

  /** Stops watching; exec requests still queued are let through by the kernel. */
  close(): void {
    c().close(this.#fan);
    c().close(this.#ino);
  }
}

/** "dev:ino" of an open descriptor, as {@link inodeKey} names files. */
function fdKey(fd: number): number {
  const buf = new Uint8Array(144);
  if (fd < 0 || c().fstat(fd, buf) !== 0) return -1;
  return keyOf(buf);
}

/** A number naming the inode at `path` (device and inode folded; collisions are harmless here). */
export function inodeKey(path: string): number {
  const buf = new Uint8Array(144);
  if (c().stat(cstr(path), buf) !== 0) return -1;
  return keyOf(buf);
}

function keyOf(stat: Uint8Array): number {
  const v = new DataView(stat.buffer);
  return Number(v.getBigUint64(0, true) % 1048573n) * 2 ** 32 + Number(v.getBigUint64(8, true) & 0xffffffffn);
}
