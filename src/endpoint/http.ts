/**
 * The inspection endpoint: Deno.serve over the live state, in the tracer's own process.
 *
 * Routes are fixed (nothing is read from disk); wrong paths get 404, other methods than GET and HEAD
 * 405, bad query values 400, and a failing handler 500 — never a crash of gmon. Nothing changes state:
 * every route only reads. Before any of that, a request naming a foreign host is refused (421), and
 * every answer carries the security headers of guard.ts.
 *
 * @module
 */
import { SiteHistory } from "../state/history.ts";
import type { StateView } from "../state/view.ts";
import { BadQuery, overview, siteDetail } from "./api.ts";
import { hostAllowed, misdirected, secured } from "./guard.ts";
import { goroutinesResponse, type Page } from "./json.ts";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";
import { goroutineDump, goroutineProfile, goroutineText } from "./pprof.ts";
import { nowDump, nowProfile, nowText, type Which } from "./now.ts";
import { monotonicNs } from "../bpf/native.ts";
import { ASSETS, PAGE } from "./page.ts";
import { gzip } from "./proto.ts";
import { listen, type Server } from "./server.ts";
import { streamParts } from "./stream.ts";

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json";
/** How often the page's history samples the live counts. */
const SAMPLE_MS = 1000;

const INDEX = `<!DOCTYPE html>
<html>
<head><title>gmon</title></head>
<body>
<h1>gmon: the goroutines of the traced processes</h1>
<ul>
<li><a href="/">/</a>: the live page, goroutines per creation site over time</li>
<li><a href="/debug/pprof/goroutine">/debug/pprof/goroutine</a>: where every goroutine is now, as Go's own
profile of that name (read from the processes' memory): profile.proto for <code>go tool pprof</code>,
<a href="/debug/pprof/goroutine?debug=1">debug=1</a>: counts per stack,
<a href="/debug/pprof/goroutine?debug=2">debug=2</a>: every goroutine as runtime.Stack prints it</li>
<li><a href="/debug/pprof/goroutineleak">/debug/pprof/goroutineleak</a>: the goroutines judged leaked, as Go 1.26's
profile of that name (<a href="/debug/pprof/goroutineleak?debug=1">debug=1</a>,
<a href="/debug/pprof/goroutineleak?debug=2">debug=2</a>: every goroutine, the leaked marked)</li>
<li><a href="/debug/pprof/goroutinecreated">/debug/pprof/goroutinecreated</a>: live goroutines by the whole stack
that created them (<a href="/debug/pprof/goroutinecreated?debug=1">debug=1</a>,
<a href="/debug/pprof/goroutinecreated?debug=2">debug=2</a>: every live goroutine with its age and creation stack)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics by creation site</li>
<li><a href="/goroutines">/goroutines</a>: live goroutines as JSON: where each is now and where it was created</li>
</ul>
</body>
</html>
`;

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": TEXT, ...headers } });
}

/** What a request is answered with besides the view. */
export interface HandleOptions {
  /** The address the endpoint listens on (-pprof-addr): a Host naming it is this endpoint's. */
  listen?: string;
  /** The live counts over time, for the page's chart (without: the chart has only now). */
  history?: SiteHistory;
}

/** Answers one request from `view`. Exported for tests; never throws. */
export async function handle(view: StateView, req: Request, opts: HandleOptions = {}): Promise<Response> {
  const host = req.headers.get("host");
  if (!hostAllowed(host, opts.listen)) return secured(misdirected(host ?? ""));
  let res: Response;
  try {
    res = await route(view, req, opts);
  } catch (e) {
    res = e instanceof BadQuery
      ? text(400, e.message + "\n")
      : text(500, `internal error: ${(e as Error).message}\n`);
  }
  return secured(res, res.status === 200 && new URL(req.url).pathname === "/");
}

function route(view: StateView, req: Request, opts: HandleOptions): Response | Promise<Response> {
  const url = new URL(req.url);
  const asset = url.pathname === "/" ? PAGE : ASSETS[url.pathname];
  const route = ROUTES[url.pathname];
  if (route === undefined && asset === undefined) return text(404, "404 page not found\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    return text(405, "405 method not allowed\n", { allow: "GET, HEAD" });
  }
  if (asset !== undefined) {
    return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
  }
  return route(view, url.searchParams, opts);
}

type Route = (view: StateView, q: URLSearchParams, opts: HandleOptions) => Response | Promise<Response>;

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), {
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
  });
}

/** A profile in the three forms Go serves: proto (debug=0), counts text (1), dump text (2). */
type Forms = {
  proto: () => Uint8Array | Promise<Uint8Array>;
  text: () => string | Promise<string>;
  /** A goroutine at a time: streamed (a dump of 100k goroutines is tens of MB). */
  dump: () => Iterable<string> | Promise<Iterable<string>>;
};

async function profileRoute(name: string, q: URLSearchParams, forms: Forms): Promise<Response> {
  const debug = q.get("debug") ?? "0";
  if (debug === "1") return text(200, await forms.text());
  if (debug === "2") return streamParts(await forms.dump(), { headers: { "content-type": TEXT } });
  if (debug !== "0") return text(400, `bad debug value ${JSON.stringify(debug)}: want 0, 1 or 2\n`);
  const body = await gzip(await forms.proto());
  return new Response(body as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${name}"`,
    },
  });
}

/** Where goroutines are now, or `leaked` ones: readings of the processes, or 503 when unreadable. */
function nowRoute(name: string, which: Which): Route {
  return (view, q) => {
    const snapshots = view.snapshots;
    if (snapshots === undefined) {
      return text(503, "goroutines can't be read from this executable (see gmon's log)\n");
    }
    const readings = () => snapshots.current();
    return profileRoute(name, q, {
      proto: async () => nowProfile(view, await readings(), which),
      text: async () => nowText(view, await readings(), which),
      dump: async () =>
        nowDump(
          await snapshots.withArguments(await readings()),
          view.goMinor ?? 99,
          monotonicNs(),
          which === "leaked",
        ),
    });
  };
}

const ROUTES: Record<string, Route> = Object.assign(Object.create(null), {
  "/api/overview": (view: StateView, q: URLSearchParams, opts: HandleOptions) =>
    json(overview(view, opts.history, q)),
  "/api/site": (view: StateView, q: URLSearchParams) => {
    const detail = siteDetail(view, q);
    return detail === null ? text(404, "no such site in that process\n") : json(detail);
  },
  "/debug/pprof/": () => new Response(INDEX, { headers: { "content-type": "text/html; charset=utf-8" } }),
  "/debug/pprof/goroutine": nowRoute("goroutine", "all"),
  "/debug/pprof/goroutineleak": nowRoute("goroutineleak", "leaked"),
  "/debug/pprof/goroutinecreated": (view: StateView, q: URLSearchParams) =>
    profileRoute("goroutinecreated", q, {
      proto: () => goroutineProfile(view),
      text: () => goroutineText(view),
      dump: () => goroutineDump(view),
    }),
  "/metrics": (view: StateView) =>
    new Response(metricsText(view), { headers: { "content-type": METRICS_CONTENT_TYPE } }),
  "/goroutines": (view: StateView, q: URLSearchParams) => goroutinesResponse(view, pageOf(q)),
});

/** /goroutines?limit=N&after=CURSOR. */
function pageOf(q: URLSearchParams): Page {
  const page: Page = {};
  const limit = q.get("limit");
  if (limit !== null) {
    if (!/^[1-9]\d{0,7}$/.test(limit)) {
      throw new BadQuery(`bad limit: ${JSON.stringify(limit)} (1 to 99999999)`);
    }
    page.limit = Number(limit);
  }
  const after = q.get("after");
  if (after !== null) page.after = after;
  return page;
}

/** A running endpoint. */
export interface Endpoint {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and waits for requests in flight. */
  close(): Promise<void>;
}

/**
 * Starts serving `view` on `hostname:port` (port 0: any free port). Throws a one-line error when the
 * address can't be bound.
 */
export function serve(view: StateView, hostname: string, port: number): Endpoint {
  const history = new SiteHistory(view);
  const opts: HandleOptions = { listen: hostname, history };
  let server: Server;
  try {
    server = listen(hostname, port, (req) => handle(view, req, opts));
  } catch (e) {
    throw new Error(
      `serve the endpoint on ${hostname}:${port}: ${(e as Error).message.replace(/ \(os error \d+\)/, "")}`,
    );
  }
  // The endpoint owns the history's clock: sampling costs a pass over the sites, not the goroutines.
  history.sample();
  const timer = setInterval(() => history.sample(), SAMPLE_MS);
  return {
    addr: server.addr,
    close: () => {
      clearInterval(timer);
      return server.shutdown();
    },
  };
}
