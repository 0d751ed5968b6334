/**
 * `gmon -version`: one line with what decides how gmon behaves on a host, for bug reports and for
 * checking a host before tracing: gmon's version and commit, the Deno and V8 it runs on, the libbpf it
 * would load ("missing" where there is none) and the kernel.
 *
 * ```
 * gmon 0.1.0 commit=cbf514687cae deno=2.9.6 v8=14.1.146.11-rusty libbpf=1.1 kernel=6.18.0
 * ```
 *
 * @module
 */
import stamp from "../build/version.json" with { type: "json" };
import { libbpfVersion } from "./bpf/native.ts";
import { encodeAttrs } from "./log/slog.ts";
import { readProcFile } from "./target/procfs.ts";

/** gmon's release. */
export const VERSION = "0.1.0";

/** The `-version` line, without its newline. */
export function versionLine(): string {
  // encodeAttrs puts a space before each attribute.
  return `gmon ${VERSION}` + encodeAttrs([
    // Written by scripts/stamp from git: the commit, "-dirty" when tracked files had changed.
    ["commit", stamp.commit],
    ["deno", Deno.version.deno],
    ["v8", Deno.version.v8],
    ["libbpf", libbpfVersion() ?? "missing"],
    ["kernel", kernelRelease()],
  ]);
}

// Through libc, as gmon reads /proc elsewhere: Deno asks for --allow-all before reading /proc/sys.
function kernelRelease(): string {
  try {
    return readProcFile("/proc/sys/kernel/osrelease")?.trim() || "unknown";
  } catch {
    return "unknown";
  }
}
