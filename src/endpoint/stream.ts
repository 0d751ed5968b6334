/**
 * Large answers (every goroutine of 100k as JSON or as a dump) produced piece by piece as the client
 * reads them: never whole in memory, and gmon's event draining runs between the pieces.
 *
 * @module
 */
import { streamed } from "./server.ts";

/** Bytes gathered before a piece is handed to the connection. */
const PIECE = 64 * 1024;

/** A streamed response of `parts`, in order. */
export function streamParts(parts: Iterable<string>, init: ResponseInit = {}): Response {
  const it = parts[Symbol.iterator]();
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Let timers (the ring's drain) run before each piece is made.
      await new Promise((r) => setTimeout(r, 0));
      let text = "";
      for (let r = it.next();; r = it.next()) {
        if (r.done) {
          if (text !== "") controller.enqueue(encoder.encode(text));
          controller.close();
          return;
        }
        text += r.value;
        if (text.length >= PIECE) break;
      }
      controller.enqueue(encoder.encode(text));
    },
    cancel() {
      it.return?.();
    },
  });
  return streamed(body, init);
}
