/**
 * Launch mode: start a program stopped, so the probes are attached before it runs any Go code, then
 * let it go. The stop comes from a shell that stops itself and then execs the program: the pid, and
 * the uprobes bound to it, stay the same across the exec.
 *
 * @module
 */
import { c } from "../bpf/native.ts";
import { readProcFile } from "./procfs.ts";
import { realPath, statPath } from "./files.ts";

/** Signal numbers (x86-64 Linux) of the signals gmon sends or forwards. */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGCONT: 18,
};

/** A program started stopped. */
export interface Launched {
  pid: number;
  /** Resolves when the program ends. */
  status: Promise<Deno.CommandStatus>;
  /** Lets the stopped program run. */
  resume(): void;
  /** Sends `signal` to the program, if it still runs. */
  signal(signal: Deno.Signal): void;
}

/** The absolute path `prog` resolves to through PATH, as a shell would run it. */
export function resolveProgram(prog: string): string {
  if (prog.includes("/")) return realPath(prog);
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (dir === "") continue;
    try {
      const p = `${dir}/${prog}`;
      const st = statPath(p);
      if (st.isFile && st.mode & 0o111) return realPath(p);
    } catch { /* not here */ }
  }
  throw new Error(`${prog}: not found in PATH`);
}

/**
 * Starts `path` with `args`, stopped before its first instruction, stdio passed through. Under sudo
 * (SUDO_UID/SUDO_GID set and running as root) it runs as the invoking user, not as root.
 */
export async function startStopped(path: string, args: string[]): Promise<Launched> {
  const uid = Deno.env.get("SUDO_UID");
  const gid = Deno.env.get("SUDO_GID");
  const asUser = uid !== undefined && gid !== undefined && c().geteuid() === 0 && uid !== "0"
    ? ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--"]
    : [];
  const script = 'kill -STOP $$; exec "$@"';
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", script, "gmon-launch", ...asUser, path, ...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const pid = child.pid;
  // Wait for the shell's self-stop ('T' in /proc/PID/stat); give up if it ends instead.
  for (let i = 0; i < 5000; i++) {
    const stat = readProcFile(`/proc/${pid}/stat`);
    if (stat === null) break;
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "T") break;
    await new Promise((r) => setTimeout(r, 1));
  }
  // Through libc: Deno.kill would want --allow-run for every program, not just the shell we start.
  const signal = (s: Deno.Signal) => void c().kill(pid, SIGNAL_NUMBERS[s] ?? 0);
  return { pid, status: child.status, resume: () => signal("SIGCONT"), signal };
}
