import { assertEquals } from "./assert.ts";
import { MAX_POLL_MS, MIN_POLL_MS, PollPacer } from "../src/bpf/pacer.ts";

Deno.test("pacer: an idle ring is polled rarely, a filling one often", () => {
  const ring = 32 << 20;
  const p = new PollPacer(ring);
  const idle = Array.from({ length: 8 }, () => p.next(0));
  assertEquals(idle.at(-1), MAX_POLL_MS);
  assertEquals(idle, [...idle].sort((a, b) => a - b), "waits only grow while idle");
  // A burst: each drain finds more than a 16th of the ring until the polls are as close as allowed.
  const busy = Array.from({ length: 8 }, () => p.next(ring / 8));
  assertEquals(busy.at(-1), MIN_POLL_MS);
  // Between a 64th and a 16th: the pace holds.
  assertEquals(p.next(ring / 32), MIN_POLL_MS);
  assertEquals(new PollPacer(ring).next(ring / 32), MIN_POLL_MS);
});
