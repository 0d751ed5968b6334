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
import { closeFd, openRead, readAt, statPath } from "./files.ts";

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
  const st = statPath(path);
  if (st.isDirectory) throw new Error(`${path} is a directory, not a Go executable`);
  if (!st.isFile) throw new Error(`${path} is not a regular file`);
  if (st.size > MAX_IMAGE_BYTES) {
    throw new Error(`${path} is ${(st.size / 2 ** 30).toFixed(1)} GiB: larger than gmon reads (1.5 GiB)`);
  }
  const quick = quickNotGo(path);
  if (quick !== null) throw new Error(`${path}: ${quick}`);
  let image: Image;
  try {
    image = TargetImage.openFile(path);
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(`${path}: `) ? msg : `${path}: ${msg}`);
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

/**
 * The module holds the executable in 32-bit WebAssembly memory beside its parsed tables: a bigger file
 * would not fit (Go executables are tens of MB; the largest seen are a few hundred).
 */
const MAX_IMAGE_BYTES = 1.5 * 2 ** 30;
/**
 * Whether the file at `path` is surely not a Go program, told from its section headers alone: how
 * host-wide mode passes over most of a host's executables cheaply.
 */
export function surelyNotGo(path: string): boolean {
  try {
    return quickNotGo(path) !== null;
  } catch {
    return false;
  }
}

/** Sections every Go executable has (one of them at least, stripped or PIE). */
const GO_SECTIONS = [".go.buildinfo", ".gopclntab", ".data.rel.ro.gopclntab", ".note.go.buildid"];

/**
 * Why the ELF at `path` is surely not a Go program, read from its section headers alone (a few KB, not
 * the whole file); null when it may be one (or the headers don't say: the full reader decides).
 */
function quickNotGo(path: string): string | null {
  const fd = openRead(path);
  try {
    const head = new Uint8Array(64);
    readAt(fd, head, 0);
    const v = new DataView(head.buffer);
    // ELF64, little-endian: the only kind gmon reads; anything else is for the full reader to name.
    if (v.getUint32(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return null;
    const shoff = Number(v.getBigUint64(0x28, true));
    const [entsize, count, strndx] = [
      v.getUint16(0x3a, true),
      v.getUint16(0x3c, true),
      v.getUint16(0x3e, true),
    ];
    if (shoff === 0 || count === 0 || entsize < 64 || strndx >= count || count > 4096) return null;
    const table = new Uint8Array(entsize * count);
    if (!readAt(fd, table, shoff)) return null;
    const t = new DataView(table.buffer);
    const strOff = Number(t.getBigUint64(strndx * entsize + 0x18, true));
    const strSize = Number(t.getBigUint64(strndx * entsize + 0x20, true));
    if (strSize > 1 << 20) return null;
    const names = new Uint8Array(strSize);
    if (!readAt(fd, names, strOff)) return null;
    const dec = new TextDecoder();
    for (let i = 0; i < count; i++) {
      const at = t.getUint32(i * entsize, true);
      const end = names.indexOf(0, at);
      if (
        at < names.length &&
        GO_SECTIONS.includes(dec.decode(names.subarray(at, end < 0 ? names.length : end)))
      ) {
        return null;
      }
    }
    return "not a Go program (no .go.buildinfo or .gopclntab section)";
  } finally {
    closeFd(fd);
  }
}
