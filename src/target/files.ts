/**
 * Files gmon reads and writes for its user, through libc: Deno's permission model reserves paths under
 * /proc (a container's binary at /proc/PID/root/..., a deleted or upgraded one at /proc/PID/exe) and
 * /dev/stderr to --allow-all, a flag gmon's users cannot pass; gmon already holds --allow-ffi, which
 * grants as much.
 *
 * @module
 */
import { c, cstr, errno, strerror } from "../bpf/native.ts";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_CLOEXEC = 0o2000000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const ENOENT = 2;
const EACCES = 13;
const EPERM = 1;

/** What gmon needs of a file's status. */
export interface FileStat {
  /** st_dev as the kernel encodes it. */
  dev: number;
  ino: number;
  mode: number;
  size: number;
  isFile: boolean;
  isDirectory: boolean;
}

/** A failed call as a one-line error: `PATH: no such file`, `PATH: permission denied`, or strerror. */
export function fileError(path: string, err: number): Error {
  const why = err === ENOENT
    ? "no such file"
    : err === EACCES || err === EPERM
    ? "permission denied"
    : strerror(err);
  return new Error(`${path}: ${why}`);
}

function decodeStat(buf: Uint8Array): FileStat {
  // struct stat on x86-64: st_dev u64 @0, st_ino u64 @8, st_mode u32 @24, st_size i64 @48.
  const v = new DataView(buf.buffer);
  const mode = v.getUint32(24, true);
  return {
    dev: Number(v.getBigUint64(0, true)),
    ino: Number(v.getBigUint64(8, true)),
    mode,
    size: Number(v.getBigInt64(48, true)),
    isFile: (mode & S_IFMT) === S_IFREG,
    isDirectory: (mode & S_IFMT) === S_IFDIR,
  };
}

/** stat(2) of `path` (symlinks followed). */
export function statPath(path: string): FileStat {
  const buf = new Uint8Array(144);
  if (c().stat(cstr(path), buf) !== 0) throw fileError(path, errno());
  return decodeStat(buf);
}

/** fstat(2) of an open descriptor; null when it is not open. */
export function statFd(fd: number): FileStat | null {
  const buf = new Uint8Array(144);
  return c().fstat(fd, buf) === 0 ? decodeStat(buf) : null;
}

/** The canonical absolute path of `path` (realpath(3)). */
export function realPath(path: string): string {
  const p = c().realpath(cstr(path), null);
  if (p === null) throw fileError(path, errno());
  try {
    return Deno.UnsafePointerView.getCString(p);
  } finally {
    c().free(p);
  }
}

/** Opens `path` read-only; returns the descriptor. */
export function openRead(path: string): number {
  const fd = c().open64(cstr(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw fileError(path, errno());
  return fd;
}

/** Opens `path` for writing, created (0644) and emptied. */
export function openWrite(path: string): number {
  const fd = c().open64(cstr(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644);
  if (fd < 0) throw fileError(path, errno());
  return fd;
}

/** Reads `dest.length` bytes of `fd` from offset 0 into `dest`; throws if the file is shorter. */
export function readAll(fd: number, dest: Uint8Array, path: string): void {
  let off = 0;
  while (off < dest.length) {
    const n = Number(
      c().pread(fd, dest.subarray(off) as Uint8Array<ArrayBuffer>, BigInt(dest.length - off), BigInt(off)),
    );
    if (n < 0) throw fileError(path, errno());
    if (n === 0) throw new Error(`${path}: shorter than its size`);
    off += n;
  }
}

/** Reads `dest.length` bytes of `fd` at `offset`; false when the file ends first. */
export function readAt(fd: number, dest: Uint8Array, offset: number): boolean {
  let off = 0;
  while (off < dest.length) {
    const n = Number(
      c().pread(
        fd,
        dest.subarray(off) as Uint8Array<ArrayBuffer>,
        BigInt(dest.length - off),
        BigInt(offset + off),
      ),
    );
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

/** Writes all of `bytes` to `fd`; throws a one-line error (e.g. no space left on device). */
export function writeAll(fd: number, bytes: Uint8Array, path: string): number {
  let off = 0;
  while (off < bytes.length) {
    const n = Number(
      c().write(fd, bytes.subarray(off) as Uint8Array<ArrayBuffer>, BigInt(bytes.length - off)),
    );
    if (n < 0) throw fileError(path, errno());
    off += n;
  }
  return off;
}

/** Closes a descriptor. */
export function closeFd(fd: number): void {
  c().close(fd);
}
