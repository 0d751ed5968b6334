/**
 * The executable to trace, answered once at attach time: is it a Go program gmon can probe, which
 * release, where goid lives in runtime.g, and where each probe goes.
 *
 * @module
 */
import type { ProbeSpec } from "../bpf/probes.ts";
import { type GoRelease, OLDEST_MINOR, parseGoVersion, tableGoidOffset } from "./goruntime.ts";
import { creationProbes, exitProbe, type Placement } from "./placement.ts";
import { TargetImage, type TargetImage as Image } from "./wasm.ts";

/** What gmon needs to know about the executable. */
export interface Target {
  path: string;
  goVersion: string;
  release: GoRelease;
  goidOffset: number;
  image: Image;
  /** Where each probe sits; a record's probe index points in here. */
  probes: ProbeSpec[];
}

/** A Go executable gmon can read: its image and release. */
export interface GoExecutable {
  path: string;
  goVersion: string;
  release: GoRelease;
  image: Image;
}

/** Opens `path` and checks that it is a Go executable of a release gmon supports. */
export function openGoExecutable(path: string): GoExecutable {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    throw new Error(`${path}: ${describe(e)}`);
  }
  if (st.isDirectory) throw new Error(`${path} is a directory, not a Go executable`);
  if (!st.isFile) throw new Error(`${path} is not a regular file`);
  let image: Image;
  try {
    image = TargetImage.openFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(`${path}: ${describe(e)}`);
    }
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const goVersion = image.info().goVersion;
  if (goVersion === null) throw new Error(`${path}: no Go version in .go.buildinfo: not a Go program`);
  const release = parseGoVersion(goVersion);
  if (release === null || release.major !== 1 || release.minor < OLDEST_MINOR) {
    throw new Error(`${path}: built by ${goVersion}; gmon supports Go 1.${OLDEST_MINOR} and later`);
  }
  return { path, goVersion, release, image };
}

/** Opens and checks `path` and places the probes; throws a one-line error naming the problem. */
export function openTarget(path: string): Target {
  const { goVersion, release, image } = openGoExecutable(path);
  const info = image.info();
  const goidOffset = info.goidOffset ?? tableGoidOffset(release);
  if (goidOffset === null) {
    throw new Error(
      `${path}: built by ${goVersion}, a release gmon has no runtime layout for, and without DWARF ` +
        `to read it from`,
    );
  }
  let placements: Placement[];
  try {
    placements = [...creationProbes(image), exitProbe(image, "runtime.goexit1")];
    // Coroutine goroutines (iter.Pull, 1.23+) exit through coroexit and never reach goexit1.
    if (hasFunction(image, "runtime.coroexit")) placements.push(exitProbe(image, "runtime.coroexit"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const probes: ProbeSpec[] = placements.map((p, index) => ({
    what: p.what,
    program: p.what === "runtime.goexit1" || p.what === "runtime.coroexit" ? "gmon_exit" : "gmon_create",
    offset: p.offset,
    addr: p.addr,
    retprobe: p.retprobe,
    reg: p.reg,
    goidOffset,
    index,
    how: p.how,
  }));
  return { path, goVersion, release, goidOffset, image, probes };
}

function hasFunction(image: Image, name: string): boolean {
  try {
    image.func(name);
    return true;
  } catch {
    return false;
  }
}

function describe(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return (e as Error).message;
}
