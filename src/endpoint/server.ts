/**
 * The endpoint's HTTP/1.1 server, small and bounded, on a plain TCP listener: gmon serves its own
 * operators a few GET routes, and must survive whoever else can reach the port. Deno.serve sets no
 * limit on connections and no timeouts: ~1,100 idle connections ran gmon out of file descriptors.
 *
 * - at most MAX_CONNECTIONS open connections: one more is answered 503 and closed at once;
 * - a connection idle (between requests, or sending its request head) past IDLE_MS is closed;
 * - a client that stops reading its answer is cut off after WRITE_MS;
 * - request heads up to MAX_HEAD bytes, no bodies (GET and HEAD only: a body is refused);
 * - a failed accept (out of descriptors, say) waits a moment and goes on: never fatal.
 *
 * Answers are the handler's Response; a body that is a stream is sent chunked as it is produced, so a
 * large answer never sits whole in memory, and producing it yields to gmon's event draining.
 *
 * @module
 */

/** Connections served at once; the rest are refused (503) until some close. */
export const MAX_CONNECTIONS = 64;
/** A connection that sends nothing for this long is closed. */
const IDLE_MS = 10_000;
/** A write that makes no progress for this long ends the connection. */
const WRITE_MS = 10_000;
/** The longest request head (request line and headers). */
const MAX_HEAD = 16 * 1024;
/** After a failed accept, wait this long before the next. */
const ACCEPT_BACKOFF_MS = 100;

const encoder = new TextEncoder();
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** A request handler; it never throws (the server answers 500 if it does). */
export type Handler = (req: Request) => Promise<Response>;

/** A listening server. */
export interface Server {
  readonly addr: Deno.NetAddr;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, closes every connection, and resolves when they are gone. */
  shutdown(): Promise<void>;
}

/** Listens on `hostname:port` (0: any free port); throws when it can't bind. */
export function listen(hostname: string, port: number, handler: Handler): Server {
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const conns = new Set<Deno.TcpConn>();
  let closed = false;
  const done = (async () => {
    while (!closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closed || e instanceof Deno.errors.BadResource) return;
        await new Promise((r) => setTimeout(r, ACCEPT_BACKOFF_MS));
        continue;
      }
      if (conns.size >= MAX_CONNECTIONS) {
        void refuse(conn);
        continue;
      }
      conns.add(conn);
      void serveConn(conn, handler, listener.addr as Deno.NetAddr).finally(() => {
        conns.delete(conn);
        closeQuietly(conn);
      });
    }
  })();
  return {
    addr: listener.addr as Deno.NetAddr,
    get connections() {
      return conns.size;
    },
    async shutdown() {
      closed = true;
      closeQuietly(listener);
      for (const c of conns) closeQuietly(c);
      await done;
    },
  };
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** Too many connections: say so in one line and close. */
async function refuse(conn: Deno.TcpConn): Promise<void> {
  const body = "503 too many connections\n";
  try {
    await writeWithin(
      conn,
      concat(
        head(503, [["content-type", "text/plain; charset=utf-8"], ["connection", "close"]], body.length),
        encoder.encode(body),
      ),
    );
  } catch { /* gone */ }
  closeQuietly(conn);
}

/** Requests of one connection, one after another (keep-alive), until it closes or idles. */
async function serveConn(conn: Deno.TcpConn, handler: Handler, addr: Deno.NetAddr): Promise<void> {
  const reader = new HeadReader(conn);
  for (;;) {
    const parsed = await reader.next();
    if (parsed === null) return;
    if (typeof parsed === "number") {
      await send(conn, new Response(`${parsed} ${STATUS_TEXT[parsed]}\n`, { status: parsed }), "GET", false);
      return;
    }
    const { method, target, version, headers } = parsed;
    const keepAlive = version === "HTTP/1.1"
      ? headers.get("connection")?.toLowerCase() !== "close"
      : headers.get("connection")?.toLowerCase() === "keep-alive";
    // GET and HEAD only: a request that carries a body is refused rather than read.
    if (headers.has("transfer-encoding") || Number(headers.get("content-length") ?? "0") > 0) {
      await send(conn, new Response("413 requests carry no body here\n", { status: 413 }), method, false);
      return;
    }
    const host = headers.get("host") ?? `${addr.hostname}:${addr.port}`;
    let res: Response;
    try {
      const url = new URL(target.startsWith("/") ? `http://${safeHost(host)}${target}` : target);
      res = await handler(new Request(url, { method: method === "HEAD" ? "HEAD" : method, headers }));
    } catch (e) {
      res = new Response(`400 bad request: ${(e as Error).message}\n`, { status: 400 });
    }
    if (!(await send(conn, res, method, keepAlive)) || !keepAlive) return;
  }
}

/** A Host header made safe to put in a URL (the handler still sees the real header). */
function safeHost(host: string): string {
  return /^[A-Za-z0-9.\-:\[\]]+$/.test(host) ? host : "invalid";
}

/** Writes the response; false when the connection broke or stalled. */
async function send(conn: Deno.TcpConn, res: Response, method: string, keepAlive: boolean): Promise<boolean> {
  const fields: [string, string][] = [];
  res.headers.forEach((v, k) => {
    if (k !== "content-length" && k !== "transfer-encoding" && k !== "connection") fields.push([k, v]);
  });
  fields.push(["connection", keepAlive ? "keep-alive" : "close"]);
  try {
    if (res.body === null || method === "HEAD") {
      const len = method === "HEAD" && res.body !== null ? (await res.arrayBuffer()).byteLength : 0;
      await writeWithin(conn, head(res.status, fields, len));
      return true;
    }
    // Small answers whole, with their length; streams as chunks while they are produced.
    if (!isStream(res)) {
      const body = new Uint8Array(await res.arrayBuffer());
      await writeWithin(conn, concat(head(res.status, fields, body.length), body));
      return true;
    }
    fields.push(["transfer-encoding", "chunked"]);
    await writeWithin(conn, head(res.status, fields, null));
    for await (const chunk of res.body) {
      if (chunk.length === 0) continue;
      await writeWithin(conn, concat(encoder.encode(chunk.length.toString(16) + "\r\n"), chunk, CRLF));
    }
    await writeWithin(conn, encoder.encode("0\r\n\r\n"));
    return true;
  } catch {
    await res.body?.cancel().catch(() => {});
    return false;
  }
}

const CRLF = encoder.encode("\r\n");
/** Responses marked so are streamed (see {@link streamed}). */
const STREAMED = "x-gmon-streamed";

function isStream(res: Response): boolean {
  return res.headers.has(STREAMED);
}

/** A response whose body, produced piece by piece, is sent as it comes (chunked). */
export function streamed(body: ReadableStream<Uint8Array>, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set(STREAMED, "1");
  return new Response(body, { ...init, headers });
}

/** Status line and headers. `length` null: the body is chunked. */
function head(status: number, fields: [string, string][], length: number | null): Uint8Array {
  let out = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
  for (const [k, v] of fields) if (k !== STREAMED) out += `${k}: ${v}\r\n`;
  if (length !== null) out += `content-length: ${length}\r\n`;
  return encoder.encode(out + "\r\n");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes all of `bytes`, each write allowed WRITE_MS to make progress. */
async function writeWithin(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("stalled")), WRITE_MS);
    });
    try {
      off += await Promise.race([conn.write(bytes.subarray(off)), stalled]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A parsed request head. */
interface Head {
  method: string;
  target: string;
  version: string;
  headers: Headers;
}

/** Reads request heads off a connection, each within IDLE_MS and MAX_HEAD bytes. */
class HeadReader {
  readonly #conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** The next head; null when the peer closed or idled; a status number for a bad request. */
  async next(): Promise<Head | number | null> {
    const deadline = Date.now() + IDLE_MS;
    for (;;) {
      const end = indexOfHeadEnd(this.#buf);
      if (end >= 0) {
        const text = new TextDecoder().decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 4);
        return parseHead(text);
      }
      if (this.#buf.length > MAX_HEAD) return 431;
      const chunk = await this.#read(deadline - Date.now());
      if (chunk === null) return null;
      this.#buf = concat(this.#buf, chunk);
    }
  }

  async #read(ms: number): Promise<Uint8Array | null> {
    if (ms <= 0) return null;
    const buf = new Uint8Array(4096);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
    try {
      const n = await Promise.race([this.#conn.read(buf).catch(() => null), idle]);
      return n === null ? null : buf.subarray(0, n);
    } finally {
      clearTimeout(timer);
    }
  }
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(text: string): Head | number {
  const [line, ...rest] = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(line);
  if (m === null) return 400;
  const headers = new Headers();
  for (const h of rest) {
    const colon = h.indexOf(":");
    if (colon <= 0) return 400;
    try {
      headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim());
    } catch {
      return 400;
    }
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}
