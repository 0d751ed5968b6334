/**
 * A StateView over hand-made stacks and goroutines, for the endpoint's unit tests.
 *
 * @module
 */
import { LiveGoroutines, siteOf } from "../src/state/live.ts";
import type { StateView } from "../src/state/view.ts";
import type { StackEntry } from "../src/symbolize/stacks.ts";

const NEWPROC = "runtime.newproc at /usr/local/go/src/runtime/proc.go:5298";

/** Stacks by id (1-based), each starting at runtime.newproc as the tracer's do. */
export const STACKS: string[][] = [
  [
    NEWPROC,
    "main.leak at /src/app/main.go:40",
    "main.main at /src/app/main.go:62",
    "runtime.main at /usr/local/go/src/runtime/proc.go:290",
  ],
  [
    NEWPROC,
    "main.leak at /src/app/main.go:44",
    "main.main at /src/app/main.go:63",
    "runtime.main at /usr/local/go/src/runtime/proc.go:290",
  ],
  [
    NEWPROC,
    "main.churn at /src/app/main.go:50",
    "main.main at /src/app/main.go:64",
    "runtime.main at /usr/local/go/src/runtime/proc.go:290",
  ],
];

/** Monotonic "now" of the fake view: 100 s. */
export const NOW_NS = 100e9;

/** A view over a fresh state; `epochMs` maps monotonic 0 to 2026-11-27T06:00:00Z. */
export function fakeView(stacks: string[][] = STACKS): StateView & { live: LiveGoroutines } {
  // One physical frame per frame, at made-up addresses, but the first two frames of a stack, which
  // stand for an inlined call and its caller at one PC, as Go's inliner makes them.
  const entries: StackEntry[] = stacks.map((frames, i) => ({
    id: i + 1,
    slot: i,
    frames,
    pcs: frames.length < 3 ? frames.map((_, j) => ({ addr: 0x401000 + 0x1000 * i + 0x10 * j, frames: 1 })) : [
      { addr: 0x401000 + 0x1000 * i, frames: 1 },
      { addr: 0x401010 + 0x1000 * i, frames: 2 },
      ...frames.slice(3).map((_, j) => ({ addr: 0x401020 + 0x1000 * i + 0x10 * j, frames: 1 })),
    ],
    attrs: "",
    attrBytes: new Uint8Array(0),
  }));
  const live = new LiveGoroutines((id) => siteOf(entries[id - 1]?.frames ?? []));
  const base = Date.parse("2026-11-27T06:00:00Z");
  return {
    path: "/src/app/app",
    live,
    stack: (id) => entries[id - 1],
    nowNs: () => NOW_NS,
    epochMs: (ns) => base + ns / 1e6,
    lost: () => 3,
  };
}

/**
 * The usual scene: pid 42 has 3 live at stack 1 (created at 10 s, 20 s, 30 s), 1 at stack 2, and 5
 * churned at stack 3 that lived 2 ms each; pid 7 has 2 live at stack 1.
 */
export function scene(): StateView & { live: LiveGoroutines } {
  const view = fakeView();
  const s = view.live;
  s.create(42, 10, 1, 10e9);
  s.create(42, 11, 1, 20e9);
  s.create(42, 12, 1, 30e9);
  s.create(42, 13, 2, 40e9);
  for (let g = 20; g < 25; g++) {
    s.create(42, g, 3, 50e9);
    s.exit(42, g, 50e9 + 2e6);
  }
  s.create(7, 10, 1, 90e9);
  s.create(7, 11, 1, 95e9);
  return view;
}
