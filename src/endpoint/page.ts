/**
 * The live page's files, embedded: imported as text, so `deno compile` carries them and nothing is read
 * from disk or fetched at run time. uPlot, the chart library, is its npm package's build, which
 * scripts/setup copies into build/ (as it builds the WASM module there).
 *
 * @module
 */
import html from "./page/index.html" with { type: "text" };
import js from "./page/page.js" with { type: "text" };
import css from "./page/page.css" with { type: "text" };
import icon from "./page/icon.svg" with { type: "text" };
import uplotJs from "../../build/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "../../build/uPlot.min.css" with { type: "text" };

/** A file the page loads: its body and content type. */
export interface Asset {
  body: string;
  type: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The page itself, at `/`. */
export const PAGE: Asset = { body: html, type: "text/html; charset=utf-8" };

/** What the page loads, by path. */
export const ASSETS: Readonly<Record<string, Asset>> = {
  "/ui/page.js": { body: js, type: JS },
  "/ui/page.css": { body: css, type: CSS },
  "/ui/uplot.js": { body: uplotJs, type: JS },
  "/ui/uplot.css": { body: uplotCss, type: CSS },
  "/ui/icon.svg": { body: icon, type: "image/svg+xml" },
};
