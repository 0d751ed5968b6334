/**
 * Checks on a process named with -pid.
 *
 * @module
 */
import { fileIdentity } from "../symbolize/bias.ts";
import { readMaps } from "./procfs.ts";

/** Throws a one-line error unless process `pid` exists and runs (maps) the executable at `path`. */
export function checkProcess(pid: number, path: string): void {
  const maps = readMaps(pid);
  if (maps === null) throw new Error(`process ${pid} does not exist`);
  // Same inode on the same device: the process maps this very file, whatever path it was started by.
  const want = fileIdentity(path);
  if (!maps.some((m) => m.inode === want.ino && m.dev === want.dev)) {
    const first = maps.find((m) => m.path.startsWith("/"))?.path ?? "another executable";
    throw new Error(`process ${pid} runs ${first}, not ${path}`);
  }
}
