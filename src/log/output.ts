/**
 * Where gmon's lines go: stdout (stderr in launch mode), or `-o FILE`. The file is opened — created,
 * emptied — only when the first line is written, after every input was checked, so that a mistyped
 * command never destroys a file. It is opened through libc (see src/target/files.ts): `-o /dev/stderr`
 * and `-o /proc/self/fd/2` are the user's own streams, and are written as such.
 *
 * @module
 */
import { c } from "../bpf/native.ts";
import { closeFd, type FileStat, openWrite, statFd, statPath, writeAll } from "../target/files.ts";

/** A synchronous sink for bytes (what {@link LineWriter} writes to). */
export interface Sink {
  writeSync(p: Uint8Array): number;
  /**
   * Whether the reader of this stream went away (`gmon | head -1` once head has its line): known
   * without writing, so an idle gmon notices too.
   */
  gone(): boolean;
  /** The file's identity once known (null for a file not created yet). */
  identity(): FileStat | null;
  close(): void;
}

/** The sink for `-o path` (null: stdout, or stderr when `launch`). */
export function openOutput(path: string | null, launch: boolean): Sink {
  if (path === null) return stream(launch ? Deno.stderr : Deno.stdout, launch ? 2 : 1);
  let target: FileStat | null = null;
  try {
    target = statPath(path);
  } catch { /* not there yet: it will be created */ }
  // The user's own stdout or stderr under another name: write it as the stream it is.
  for (const [fd, s] of [[1, Deno.stdout], [2, Deno.stderr]] as const) {
    const st = statFd(fd);
    if (target !== null && st !== null && st.dev === target.dev && st.ino === target.ino) {
      return stream(s, fd);
    }
  }
  let fd = -1;
  return {
    writeSync(p: Uint8Array): number {
      if (fd < 0) fd = openWrite(path);
      return writeAll(fd, p, path);
    },
    identity: () => target ?? (fd >= 0 ? statFd(fd) : null),
    gone: () => false,
    close: () => {
      if (fd >= 0) closeFd(fd);
      fd = -1;
    },
  };
}

function stream(s: typeof Deno.stdout | typeof Deno.stderr, fd: number): Sink {
  return {
    writeSync: (p) => s.writeSync(p),
    identity: () => statFd(fd),
    gone: () => readerGone(fd),
    close: () => {},
  };
}

const POLLERR = 0x8;
const POLLHUP = 0x10;

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
