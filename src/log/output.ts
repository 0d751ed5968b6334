/**
 * Where gmon's lines go: stdout (stderr in launch mode), or `-o FILE`. The file is opened — created,
 * emptied — only when the first line is written, after every input was checked, so that a mistyped
 * command never destroys a file. It is opened through libc (see src/target/files.ts): `-o /dev/stderr`
 * and `-o /proc/self/fd/2` are the user's own streams, and are written as such.
 *
 * @module
 */
import { c, cstr, errno } from "../bpf/native.ts";
import { closeFd, fileError, type FileStat, openWrite, statFd, statPath } from "../target/files.ts";
import type { Out } from "./writer.ts";

/** Where {@link LineWriter} writes: without blocking (see {@link Out}). */
export interface Sink extends Out {
  /**
   * Whether the reader of this stream went away (`gmon | head -1` once head has its line): known
   * without writing, so an idle gmon notices too.
   */
  gone(): boolean;
  close(): void;
}

/** The sink for `-o path` (null: stdout, or stderr when `launch`). */
export function openOutput(path: string | null, launch: boolean): Sink {
  if (path === null) return stream(launch ? 2 : 1);
  let target: FileStat | null = null;
  try {
    target = statPath(path);
  } catch { /* not there yet: it will be created */ }
  // The user's own stdout or stderr under another name: write it as the stream it is.
  for (const fd of [1, 2]) {
    const st = statFd(fd);
    if (target !== null && st !== null && st.dev === target.dev && st.ino === target.ino) return stream(fd);
  }
  let fd = -1;
  let out: Out | null = null;
  return {
    write(p: Uint8Array): number {
      if (out === null) {
        fd = openWrite(path);
        // A terminal or a pipe named by path: this description is gmon's own, it may stop blocking.
        if (statFd(fd)?.isFile === false) setNonBlocking(fd);
        out = fdOut(fd, path);
      }
      return out.write(p);
    },
    wait: (ms) => fd < 0 || writable(fd, ms),
    gone: () => false,
    close: () => {
      if (fd >= 0) closeFd(fd);
      fd = -1;
    },
  };
}

const O_WRONLY = 1;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EAGAIN = 11;
const EPIPE = 32;
/** A pipe with room reports POLLOUT for at least this much: a write this size then never blocks. */
const PIPE_BUF = 4096;

/**
 * gmon's stdout or stderr, written without blocking but without changing how the stream blocks for
 * others: the open file description is shared (with the shell's terminal, with a launched program that
 * inherited it), and O_NONBLOCK on it would make their writes fail. A file is written as is (it doesn't
 * stall); a socket with MSG_DONTWAIT; a pipe or terminal through a description of gmon's own, opened
 * anew by /proc/self/fd.
 */
function stream(fd: number): Sink {
  const st = statFd(fd);
  let own = -1;
  let out: Out;
  if (st === null || st.isFile) out = fdOut(fd, `fd ${fd}`);
  else if ((st.mode & S_IFMT) === S_IFSOCK) out = sendOut(fd);
  else {
    own = c().open(cstr(`/proc/self/fd/${fd}`), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    out = own >= 0 ? fdOut(own, `fd ${fd}`) : pollOut(fd);
  }
  return {
    write: (p) => out.write(p),
    wait: (ms) => writable(fd, ms),
    gone: () => readerGone(fd),
    close: () => {
      if (own >= 0) closeFd(own);
      own = -1;
    },
  };
}

/** write(2) on `fd`: what it took (0 when it would block), -1 when the reader is gone. */
function fdOut(fd: number, name: string): Out {
  return {
    write(p) {
      const n = Number(c().write(fd, p as Uint8Array<ArrayBuffer>, BigInt(p.length)));
      if (n >= 0) return n;
      const err = errno();
      if (err === EAGAIN) return 0;
      if (err === EPIPE) return -1;
      throw fileError(name, err);
    },
  };
}

function sendOut(fd: number): Out {
  return {
    write(p) {
      const n = Number(
        c().send(fd, p as Uint8Array<ArrayBuffer>, BigInt(p.length), MSG_DONTWAIT | MSG_NOSIGNAL),
      );
      if (n >= 0) return n;
      const err = errno();
      if (err === EAGAIN) return 0;
      if (err === EPIPE) return -1;
      throw fileError(`fd ${fd}`, err);
    },
  };
}

/** A stream that can't be reopened: written a pipe buffer at a time, only when poll says there's room. */
function pollOut(fd: number): Out {
  const inner = fdOut(fd, `fd ${fd}`);
  return {
    write(p) {
      if (!writable(fd, 0)) return 0;
      return inner.write(p.subarray(0, PIPE_BUF));
    },
  };
}

function setNonBlocking(fd: number): void {
  const flags = c().fcntl(fd, F_GETFL, 0);
  if (flags >= 0) c().fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;

/** Whether `fd` has room to write within `ms` (or its reader is gone: a write then says so). */
function writable(fd: number, ms: number): boolean {
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, POLLOUT, true);
  return c().poll(pfd, 1n, Math.max(0, Math.round(ms))) > 0;
}

/** poll(2) says the other end of `fd` closed (a pipe with no reader left reports POLLERR). */
function readerGone(fd: number): boolean {
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  if (c().poll(pfd, 1n, 0) <= 0) return false;
  return (v.getInt16(6, true) & (POLLERR | POLLHUP)) !== 0;
}

/** Throws a one-line error when `-o output` names `protect` (the executable gmon reads): never empty it. */
export function refuseOverwrite(output: string | null, protect: string): void {
  if (output === null) return;
  let a: FileStat;
  try {
    a = statPath(output);
  } catch {
    return;
  }
  const b = statPath(protect);
  if (a.dev === b.dev && a.ino === b.ino) {
    throw new Error(`-o ${output} is the executable ${protect}: refusing to overwrite it`);
  }
}
