/**
 * The text event lines write: a sink backed by a growing buffer, decoded.
 *
 * @module
 */
import { ByteBuffer } from "../src/log/bytes.ts";
import type { LineSink } from "../src/log/events.ts";

/** What `write` puts in a line sink, as text. */
export function written(write: (out: LineSink) => void): string {
  const b = new ByteBuffer(8);
  write({
    put: (bytes) => {
      b.reserve(bytes.length);
      b.put(bytes);
    },
  });
  return new TextDecoder().decode(b.view());
}
