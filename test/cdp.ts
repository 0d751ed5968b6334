/**
 * A headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol: a WebSocket and
 * JSON messages, enough for the page test (navigate, evaluate, watch requests and errors, screenshot).
 *
 * @module
 */

export const CHROMIUM = "/usr/bin/chromium";
/** Every page's viewport, CSS pixels (one device pixel each). */
export const VIEWPORT = { width: 1280, height: 1000 };

type Listener = (params: Record<string, unknown>, sessionId?: string) => void;

/** Is Debian's chromium installed (scripts/setup installs it)? */
export function haveChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** A running browser. */
export class Browser {
  readonly #proc: Deno.ChildProcess;
  readonly #ws: WebSocket;
  readonly #dir: string;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners: { method: string; fn: Listener }[] = [];
  #closed = false;
  /** What chromium printed on stderr, for failure messages. */
  stderr = "";

  private constructor(proc: Deno.ChildProcess, ws: WebSocket, dir: string) {
    this.#proc = proc;
    this.#ws = ws;
    this.#dir = dir;
    ws.onmessage = (e) => this.#receive(JSON.parse(e.data as string));
  }

  /**
   * Starts chromium headless with a fresh profile. `extraArgs` add flags (e.g. host resolver rules).
   * The flags that keep it from reaching out (background networking, component updates, sync) are
   * what lets it run here at all: this machine refuses outside connections.
   */
  static async launch(extraArgs: string[] = []): Promise<Browser> {
    const dir = await Deno.makeTempDir({ prefix: "gmon-chromium-" });
    const proc = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1280,1000",
        `--user-data-dir=${dir}`,
        "--remote-debugging-port=0",
        ...extraArgs,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    let url: string | undefined;
    while (url === undefined) {
      const { value, done } = await lines.read();
      if (done) {
        await proc.status;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        throw new Error(`chromium ended before listening: ${err}`);
      }
      err += value;
      url = /DevTools listening on (ws:\/\/\S+)/.exec(err)?.[1];
    }
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`DevTools WebSocket: ${(e as ErrorEvent).message}`));
    });
    const browser = new Browser(proc, ws, dir);
    browser.stderr = err;
    // Keep draining stderr so chromium never blocks on a full pipe.
    (async () => {
      for (;;) {
        const { value, done } = await lines.read().catch(() => ({ value: "", done: true }));
        if (done) break;
        browser.stderr += value;
      }
    })();
    return browser;
  }

  #receive(
    msg: {
      id?: number;
      result?: unknown;
      error?: { message: string };
      method?: string;
      params?: unknown;
      sessionId?: string;
    },
  ) {
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
      return;
    }
    for (const l of this.#listeners) {
      if (l.method === msg.method) l.fn(msg.params as Record<string, unknown>, msg.sessionId);
    }
  }

  /** Sends one command (to a page's session when `sessionId` is given) and waits for its result. */
  send<T = Record<string, unknown>>(method: string, params: unknown = {}, sessionId?: string): Promise<T> {
    const id = this.#next++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(id, { resolve, reject });
    this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    return promise as Promise<T>;
  }

  on(method: string, fn: Listener): void {
    this.#listeners.push({ method, fn });
  }

  /** A new tab, attached. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(this, sessionId);
    await page.send("Page.enable");
    // The window's size less the browser's own bars would be the viewport: fix it instead.
    await page.send("Emulation.setDeviceMetricsOverride", {
      ...VIEWPORT,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return page;
  }

  /** Ends chromium and removes its profile; again, does nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([this.send("Browser.close"), new Promise((r) => timer = setTimeout(r, 2000))]);
    } catch { /* already going */ }
    clearTimeout(timer);
    this.#ws.close();
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#proc.status;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** One tab. */
export class Page {
  constructor(readonly browser: Browser, readonly sessionId: string) {}

  send<T = Record<string, unknown>>(method: string, params: unknown = {}): Promise<T> {
    return this.browser.send<T>(method, params, this.sessionId);
  }

  /** Calls `fn` on this tab's events named `method`. */
  on(method: string, fn: (params: Record<string, unknown>) => void): void {
    this.browser.on(method, (params, sessionId) => {
      if (sessionId === this.sessionId) fn(params);
    });
  }

  /** Navigates and waits for the load event (or `ms` to pass: an error). */
  async goto(url: string, ms = 15_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loaded = new Promise<void>((resolve, reject) => {
      this.on("Page.loadEventFired", () => resolve());
      timer = setTimeout(() => reject(new Error(`timed out loading ${url}`)), ms);
    });
    try {
      const r = await this.send<{ errorText?: string }>("Page.navigate", { url });
      if (r.errorText) throw new Error(`navigate to ${url}: ${r.errorText}`);
      await loaded;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The value of `expression` (awaited if a promise), by value. */
  async eval<T>(expression: string): Promise<T> {
    const r = await this.send<
      { result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }
    >(
      "Runtime.evaluate",
      { expression, returnByValue: true, awaitPromise: true },
    );
    if (r.exceptionDetails) {
      throw new Error(
        `${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`,
      );
    }
    return r.result.value as T;
  }

  /** Evaluates `expression` until it is truthy (or `ms` pass); returns its last value. */
  async waitFor<T>(what: string, expression: string, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await this.eval<T>(expression);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }
}
