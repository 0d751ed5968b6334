/**
 * Checks on a process named with -pid.
 *
 * @module
 */
import { readMaps } from "./procfs.ts";

/** Throws a one-line error unless process `pid` exists and runs (maps) the executable at `path`. */
export function checkProcess(pid: number, path: string): void {
  const maps = readMaps(pid);
  if (maps === null) throw new Error(`process ${pid} does not exist`);
  const want = Deno.statSync(path);
  // Same inode on the same device: the process maps this very file, whatever path it was started by.
  // glibc's dev_t encoding: major in bits 8-19, minor in bits 0-7 and 20-31; maps prints both in hex.
  const major = (want.dev >>> 8) & 0xfff;
  const minor = (want.dev & 0xff) | ((want.dev >>> 12) & 0xfff00);
  const dev = `${hex2(major)}:${hex2(minor)}`;
  if (!maps.some((m) => m.inode === want.ino && m.dev === dev)) {
    const first = maps.find((m) => m.path.startsWith("/"))?.path ?? "another executable";
    throw new Error(`process ${pid} runs ${first}, not ${path}`);
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
