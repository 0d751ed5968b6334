/**
 * What every answer of the endpoint holds to, whatever its route.
 *
 * DNS rebinding: a web page from anywhere can point a name it controls at 127.0.0.1 and then read the
 * endpoint as its own origin. Its requests carry that name in Host, so only requests naming the
 * endpoint by an IP literal, `localhost` or the address it listens on are answered.
 *
 * Every response carries a Content-Security-Policy: nothing may load anything (`default-src 'none'`),
 * but the page, which may load its own scripts and styles and fetch its own API from this origin. No
 * inline script or style is allowed and Trusted Types forbid writing HTML from script, so a site name
 * or a frame of the traced program can never run as code in the page.
 *
 * @module
 */

/** The policy of everything but the page. */
export const STRICT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's policy: its own scripts, styles, icon and API, nothing inline, nothing elsewhere. */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
  "require-trusted-types-for 'script'; trusted-types 'none'";

/** Whether `s` is an IPv4 address in the dotted form browsers write (no leading zeros). */
function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** Whether `s` is an IPv6 address (without brackets), as far as its characters go. */
function isIPv6(s: string): boolean {
  return s.includes(":") && /^[0-9a-f:.]+$/.test(s) && s.length <= 45;
}

/**
 * Whether a request with this Host header may be answered by an endpoint listening on `listen` (its
 * -pprof-addr). A request without Host (HTTP/1.0, a tool) is not a browser's: it passes.
 */
export function hostAllowed(host: string | null, listen = ""): boolean {
  if (host === null) return true;
  const h = host.toLowerCase();
  const portOk = (port: string) => port === "" || /^:\d{1,5}$/.test(port);
  // An IPv6 literal comes in brackets; anything else has no colon but the port's.
  if (h.startsWith("[")) {
    const close = h.indexOf("]");
    return close > 0 && isIPv6(h.slice(1, close)) && portOk(h.slice(close + 1));
  }
  const colon = h.indexOf(":");
  const name = colon < 0 ? h : h.slice(0, colon);
  if (!portOk(colon < 0 ? "" : h.slice(colon))) return false;
  if (name === "localhost" || isIPv4(name)) return true;
  const own = listen.toLowerCase();
  return own !== "" && name === own;
}

/** The one-line answer to a foreign Host. */
export function misdirected(host: string): Response {
  const shown = JSON.stringify(host.length > 100 ? host.slice(0, 100) + "..." : host);
  return new Response(
    `421 misdirected request: host ${shown} is not this endpoint; use its IP address or localhost\n`,
    { status: 421, headers: { "content-type": "text/plain; charset=utf-8" } },
  );
}

/** Adds the headers every response carries; `page` for the page's HTML, which gets {@link PAGE_CSP}. */
export function secured(res: Response, page = false): Response {
  const h = res.headers;
  h.set("content-security-policy", page ? PAGE_CSP : STRICT_CSP);
  h.set("x-content-type-options", "nosniff");
  h.set("x-frame-options", "DENY");
  h.set("referrer-policy", "no-referrer");
  h.set("cross-origin-resource-policy", "same-origin");
  h.set("cross-origin-opener-policy", "same-origin");
  return res;
}
