/**
 * A program run as a container runtime runs one, made of the same kernel parts: its own mount and pid
 * namespaces (`unshare`), an overlay root holding only the program (at /app/NAME), and a cgroup named
 * as Docker names them (`docker-ID.scope`), so that its container id is read as gmon reads real ones.
 *
 * @module
 */
import { assert } from "./assert.ts";

/** The cgroup2 hierarchy's mount point (cgroup v2 alone, or the unified one of a hybrid host). */
function cgroup2Root(): string {
  for (const line of Deno.readTextFileSync("/proc/mounts").split("\n")) {
    const [, at, type] = line.split(" ");
    if (type === "cgroup2") return at;
  }
  throw new Error("no cgroup2 hierarchy mounted");
}

function run(cmd: string, args: string[]): void {
  const r = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).outputSync();
  assert(r.code === 0, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A running "container". */
export class Container {
  /** Its id, 64 hex digits, as container runtimes make them. */
  readonly id: string;
  /** Where its program is, inside it. */
  readonly exe: string;
  readonly child: Deno.ChildProcess;
  readonly #dir: string;
  readonly #cgroup: string;
  #pid: number | null = null;
  #bound = false;

  /**
   * Starts `bin` (a static executable) as /app/`name` with `args`, stdin and stdout piped: copied into
   * the container's image, or with `bind` bind-mounted there (the very file the host runs, as a volume).
   */
  constructor(bin: string, name: string, args: string[], bind = false) {
    this.id = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    this.exe = `/app/${name}`;
    this.#dir = Deno.makeTempDirSync({ prefix: "gmon-container-" });
    for (const d of ["lower/app", "upper", "work", "root"]) {
      Deno.mkdirSync(`${this.#dir}/${d}`, { recursive: true });
    }
    Deno.copyFileSync(bin, `${this.#dir}/lower/app/${name}`);
    Deno.chmodSync(`${this.#dir}/lower/app/${name}`, 0o755);
    const d = this.#dir;
    run("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${d}/lower,upperdir=${d}/upper,workdir=${d}/work`,
      `${d}/root`,
    ]);
    if (bind) run("mount", ["--bind", bin, `${d}/root/app/${name}`]);
    this.#bound = bind;
    this.#cgroup = `${cgroup2Root()}/gmon-test/docker-${this.id}.scope`;
    Deno.mkdirSync(this.#cgroup, { recursive: true });
    // The shell joins the cgroup, then becomes unshare, whose child (pid 1 inside) runs the program.
    const script =
      `echo $$ > "${this.#cgroup}/cgroup.procs" && exec unshare -mpf --mount-proc chroot "$0" "$@"`;
    this.child = new Deno.Command("sh", {
      args: ["-c", script, `${d}/root`, this.exe, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  }

  /** The program's pid as the host sees it (unshare's child), once it runs. */
  async hostPid(): Promise<number> {
    if (this.#pid !== null) return this.#pid;
    for (let i = 0; i < 500; i++) {
      try {
        const kids = Deno.readTextFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`).trim();
        if (kids !== "") return this.#pid = Number(kids.split(" ")[0]);
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("the container's program never started");
  }

  /** Ends it (if still running) and takes its overlay and cgroup down. */
  async remove(): Promise<void> {
    try {
      Deno.kill(await this.hostPid(), "SIGKILL");
    } catch { /* gone */ }
    await this.child.stdin.close().catch(() => {});
    await this.child.stdout.cancel().catch(() => {});
    await this.child.status;
    if (this.#bound) new Deno.Command("umount", { args: [`${this.#dir}/root${this.exe}`] }).outputSync();
    new Deno.Command("umount", { args: [`${this.#dir}/root`] }).outputSync();
    for (let i = 0; i < 50; i++) {
      try {
        Deno.removeSync(this.#cgroup);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    Deno.removeSync(this.#dir, { recursive: true });
  }
}
