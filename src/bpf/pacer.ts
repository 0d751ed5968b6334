/**
 * How long the reader waits before draining the ring again. The probes never wake it (that would add
 * an IPI to every hit), so it polls, and a poll is not free: a wake-up costs gmon ~0.2 ms of CPU here
 * (Deno's event loop, whether a timer, a nonblocking FFI sleep or Atomics.waitAsync wakes it), as
 * much as handling a thousand events. So an idle or quiet ring is
 * polled rarely, and a busy one often enough that a poll finds it at most about 1/16 full.
 *
 * @module
 */

/** Polls are this far apart at least (a busy ring), */
export const MIN_POLL_MS = 5;
/**
 * and at most (an idle one): 100 ms of events fit in gmon's 32 MiB ring up to ~300 MB/s of records,
 * ~4M events a second, more than the consumer can handle at all.
 */
export const MAX_POLL_MS = 100;

/** Paces the polls of one ring by how much each drain found. */
export class PollPacer {
  readonly #ringBytes: number;
  #ms = MIN_POLL_MS;

  constructor(ringBytes: number) {
    this.#ringBytes = ringBytes;
  }

  /** The wait before the next poll, after a drain that consumed `bytes` of the ring. */
  next(bytes: number): number {
    if (bytes > this.#ringBytes / 16) this.#ms = Math.max(MIN_POLL_MS, this.#ms / 2);
    else if (bytes < this.#ringBytes / 64) this.#ms = Math.min(MAX_POLL_MS, this.#ms * 2);
    return this.#ms;
  }
}
