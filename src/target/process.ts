/**
 * Checks on a process named with -pid, and the executable it runs.
 *
 * @module
 */
import { fileIdentity } from "../symbolize/bias.ts";
import { exeOf, processState, readMaps } from "./procfs.ts";

/** Throws a one-line error unless process `pid` exists and runs (maps) the executable at `path`. */
export function checkProcess(pid: number, path: string): void {
  checkUserProcess(pid);
  const maps = readMaps(pid);
  if (maps === null) throw new Error(`process ${pid} does not exist`);
  // Same inode on the same device: the process maps this very file, whatever path it was started by.
  const want = fileIdentity(path);
  if (!maps.some((m) => m.inode === want.ino && m.dev === want.dev)) {
    const first = maps.find((m) => m.path.startsWith("/"))?.path ?? "another executable";
    throw new Error(`process ${pid} runs ${first}, not ${path}`);
  }
}

/** Throws a one-line error unless `pid` is a live user process (not gone, a zombie or a kernel thread). */
export function checkUserProcess(pid: number): void {
  const st = processState(pid);
  if (st === null) throw new Error(`process ${pid} does not exist`);
  if (st.kthread) throw new Error(`process ${pid} is a kernel thread, not a Go program`);
  if (st.state === "Z" || st.state === "X") {
    throw new Error(`process ${pid} has exited (a zombie its parent has not reaped)`);
  }
}

/** The executable process `pid` runs (-pid without -path); throws a one-line error when it can't tell. */
export function executableOf(pid: number): string {
  checkUserProcess(pid);
  const exe = exeOf(pid);
  if (exe === null) throw new Error(`process ${pid}: its executable can't be read`);
  return exe;
}
