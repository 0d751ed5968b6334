/**
 * Facts about Go runtime internals that gmon's probes read, per Go release, for executables without
 * DWARF. Each row was read in that release's src/runtime/runtime2.go and checked against a DWARF build
 * (see ../shared/DESIGN.md). A release not listed is refused rather than guessed at.
 *
 * @module
 */

/** A parsed `go1.N[.P]` version. */
export interface GoRelease {
  major: number;
  minor: number;
  text: string;
}

/** The oldest release with the register ABI (g in r14, results in rax) that the probes rely on. */
export const OLDEST_MINOR = 17;

/** Parses "go1.26.8", "go1.27rc1", "go1.21"; null for anything else (e.g. "devel +abc"). */
export function parseGoVersion(text: string): GoRelease | null {
  const m = /^go(\d+)\.(\d+)/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), text } : null;
}

/** goid's byte offset in runtime.g by minor release (Go 1.x). */
const GOID_OFFSET: ReadonlyMap<number, number> = new Map([
  [17, 152],
  [18, 152],
  [19, 152],
  [20, 152],
  [21, 152],
  [22, 152],
  // syscallbp added before goid
  [23, 160],
  [24, 160],
  // gobuf.ret removed
  [25, 152],
  [26, 152],
  [27, 152],
]);

/** goid's offset for `release` from the table, or null when the release is not in it. */
export function tableGoidOffset(release: GoRelease): number | null {
  if (release.major !== 1) return null;
  return GOID_OFFSET.get(release.minor) ?? null;
}
