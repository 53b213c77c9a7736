/**
 * Batch export of Plotly figures: HTML pages always, and PNG, SVG and PDF
 * through a headless Chromium driven by `puppeteer-core`. One browser and
 * one page serve a whole batch, because starting Chromium and loading the
 * plotly.js bundle take about a second while each figure then takes a
 * fraction of that.
 *
 * Limitations:
 * - The static formats need a Chromium binary (Debian's `chromium`);
 *   `puppeteer-core` never downloads one. Without it only HTML is written
 *   and `onWarning` is called once.
 * - Heatmap traces are raster images inside the SVG and PDF files, as
 *   plotly.js draws them; lines, markers and text stay vector.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../train/files.ts";
import type { PlotlyFigure } from "./figure4.ts";
import { plotlyBundlePath, writeFigureHtml } from "./html.ts";

/** File formats {@linkcode exportFigures} writes. */
export type FigureFormat = "html" | "png" | "svg" | "pdf";

/** Every format, in the order files are written. */
export const FIGURE_FORMATS: readonly FigureFormat[] = [
  "html",
  "png",
  "svg",
  "pdf",
];

/** Chromium of Debian's `chromium` package. */
export const DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Flags Chromium is started with: headless, no sandbox (it runs as root in
 * containers), no GPU, and no background traffic to Google services.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A figure with the base name of its files. */
export interface NamedFigure {
  /** Base file name without extension, such as "figure1". */
  name: string;
  /** The figure. */
  figure: PlotlyFigure;
  /** Page title of the HTML file. @default name */
  title?: string;
}

/** Options of {@linkcode exportFigures}. */
export interface ExportOptions {
  /** Chromium executable. @default DEFAULT_CHROMIUM_PATH */
  executablePath?: string;
  /**
   * Pixel density of PNG files: 2 writes 2 x the layout's width and
   * height in pixels.
   * @default 2
   */
  scale?: number;
  /** Width in CSS pixels of figures whose layout sets none. @default 800 */
  defaultWidth?: number;
  /** Height in CSS pixels of figures whose layout sets none. @default 500 */
  defaultHeight?: number;
  /** Time limit for starting Chromium and for each figure, in ms. @default 60000 */
  timeoutMs?: number;
  /**
   * Receives one message when static formats were requested but Chromium
   * is missing, saying how to enable them.
   */
  onWarning?: (message: string) => void;
}

/** Files written by {@linkcode exportFigures}. */
export interface ExportResult {
  /** Paths per figure name and format. */
  files: Record<string, Partial<Record<FigureFormat, string>>>;
  /** Requested formats that were not written (Chromium missing). */
  skipped: FigureFormat[];
}

/**
 * Writes each figure as `<dir>/<name>.<format>` for every requested
 * format. HTML pages share one copy of plotly.js in `dir`.
 *
 * @param figures Figures with unique names.
 * @param dir Output folder, created when missing.
 * @param formats Formats to write; HTML is always written.
 * @returns The paths written and the formats skipped.
 * @throws {Error} If a name repeats or is not a plain file name, a format
 * is unknown, or Chromium fails to start or to render a figure.
 *
 * @example
 * ```ts ignore
 * import { exportFigures, figure4 } from "./lib/mod.ts";
 * const figure = figure4(runs);
 * await exportFigures([{ name: "figure4", figure }], "figures", [
 *   "png",
 *   "pdf",
 * ], { onWarning: console.warn });
 * ```
 */
export async function exportFigures(
  figures: NamedFigure[],
  dir: string,
  formats: readonly FigureFormat[] = FIGURE_FORMATS,
  options: ExportOptions = {},
): Promise<ExportResult> {
  checkFigures(figures, formats);
  const files: ExportResult["files"] = {};
  for (const { name, figure, title } of figures) {
    files[name] = { html: await writeFigureHtml(figure, dir, name, title) };
  }

  const staticFormats = formats.filter((f) => f !== "html");
  if (staticFormats.length === 0 || figures.length === 0) {
    return { files, skipped: [] };
  }
  const executablePath = options.executablePath ?? DEFAULT_CHROMIUM_PATH;
  if (!await isFile(executablePath)) {
    options.onWarning?.(
      `Chromium not found at ${executablePath}, so only HTML was written ` +
        `(skipped ${staticFormats.join(", ")}). Install Debian's chromium ` +
        `package (apt-get install chromium) or pass executablePath.`,
    );
    return { files, skipped: [...new Set(staticFormats)] };
  }

  const renderer = await ChromiumRenderer.start(executablePath, options);
  try {
    for (const { name, figure } of figures) {
      for (const format of new Set(staticFormats)) {
        const bytes = await renderer.render(figure, format);
        const path = join(dir, `${name}.${format}`);
        await writeFileAtomic(path, bytes);
        files[name][format] = path;
      }
    }
  } finally {
    await renderer.close();
  }
  return { files, skipped: [] };
}

function checkFigures(
  figures: NamedFigure[],
  formats: readonly FigureFormat[],
): void {
  for (const format of formats) {
    if (!FIGURE_FORMATS.includes(format)) {
      throw new Error(
        `exportFigures: unknown format "${format}"; expected one of ` +
          `${FIGURE_FORMATS.join(", ")}.`,
      );
    }
  }
  const names = new Set<string>();
  for (const { name } of figures) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new Error(
        `exportFigures: figure name "${name}" is not a plain file name; ` +
          `use letters, digits, ".", "_" and "-".`,
      );
    }
    if (names.has(name)) {
      throw new Error(`exportFigures: figure name "${name}" repeats.`);
    }
    names.add(name);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

// The puppeteer-core types are loaded lazily with the module, so the
// renderer keeps only the few methods it calls.
interface Page {
  setContent(html: string): Promise<unknown>;
  addScriptTag(options: { path: string }): Promise<unknown>;
  setDefaultTimeout(ms: number): void;
  evaluate<A extends unknown[], T>(
    fn: (...args: A) => T | Promise<T>,
    ...args: A
  ): Promise<T>;
  pdf(options: Record<string, unknown>): Promise<Uint8Array>;
}
/** The plotly.js global inside the page. */
interface PagePlotly {
  newPlot(
    id: string,
    data: unknown,
    layout: unknown,
    config: unknown,
  ): Promise<unknown>;
  toImage(figure: unknown, options: Record<string, unknown>): Promise<string>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** One Chromium page with plotly.js loaded. */
class ChromiumRenderer {
  readonly #browser: Browser;
  readonly #page: Page;
  readonly #userDataDir: string;
  readonly #options: ExportOptions;

  private constructor(
    browser: Browser,
    page: Page,
    userDataDir: string,
    options: ExportOptions,
  ) {
    this.#browser = browser;
    this.#page = page;
    this.#userDataDir = userDataDir;
    this.#options = options;
  }

  static async start(
    executablePath: string,
    options: ExportOptions,
  ): Promise<ChromiumRenderer> {
    const { default: puppeteer } = await import("puppeteer-core");
    // A fresh profile per batch, so no state leaks between exports.
    const userDataDir = await Deno.makeTempDir({ prefix: "camdrop-chromium-" });
    const timeout = options.timeoutMs ?? 60_000;
    let browser: Browser | undefined;
    try {
      browser = await puppeteer.launch({
        executablePath,
        headless: true,
        // Talk over pipes: no DevTools port is opened.
        pipe: true,
        userDataDir,
        args: [...CHROMIUM_ARGS],
        timeout,
      }) as unknown as Browser;
      const page = await browser.newPage();
      page.setDefaultTimeout(timeout);
      await page.setContent(
        '<!DOCTYPE html><html><body style="margin:0;background:#fff">' +
          '<div id="figure"></div></body></html>',
      );
      await page.addScriptTag({ path: plotlyBundlePath() });
      return new ChromiumRenderer(browser, page, userDataDir, options);
    } catch (error) {
      await browser?.close().catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
      throw new Error(
        `exportFigures: Chromium at ${executablePath} failed to start or ` +
          `to load plotly.js: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** Renders one figure as PNG, SVG or PDF bytes. */
  async render(
    figure: PlotlyFigure,
    format: Exclude<FigureFormat, "html">,
  ): Promise<Uint8Array> {
    const layout = figure.layout as { width?: number; height?: number };
    const width = layout.width ?? this.#options.defaultWidth ?? 800;
    const height = layout.height ?? this.#options.defaultHeight ?? 500;
    const spec = {
      data: figure.data,
      layout: { ...figure.layout, width, height },
    };
    if (format === "pdf") {
      // Draw into the page, then print one page of exactly the figure's
      // size, so the PDF keeps vector lines and text.
      await this.#page.evaluate(async (s: PlotlyFigure) => {
        const { Plotly } = globalThis as unknown as { Plotly: PagePlotly };
        await Plotly.newPlot("figure", s.data, s.layout, { staticPlot: true });
      }, spec);
      return await this.#page.pdf({
        width: `${width}px`,
        height: `${height}px`,
        printBackground: true,
        pageRanges: "1",
      });
    }
    const url = await this.#page.evaluate(
      (s: PlotlyFigure, f: string, k: number): Promise<string> => {
        const { Plotly } = globalThis as unknown as { Plotly: PagePlotly };
        return Plotly.toImage(s, {
          format: f,
          width: (s.layout as { width: number }).width,
          height: (s.layout as { height: number }).height,
          scale: k,
        });
      },
      spec,
      format,
      format === "png" ? this.#options.scale ?? 2 : 1,
    );
    return decodeDataUrl(url);
  }

  async close(): Promise<void> {
    try {
      await this.#browser.close();
    } finally {
      await Deno.remove(this.#userDataDir, { recursive: true }).catch(
        () => {},
      );
    }
  }
}

/** Decodes a base64 or percent-encoded `data:` URL into bytes. */
export function decodeDataUrl(url: string): Uint8Array {
  const comma = url.indexOf(",");
  if (!url.startsWith("data:") || comma < 0) {
    throw new Error(
      `decodeDataUrl: expected a data: URL, got "${url.slice(0, 40)}".`,
    );
  }
  const header = url.slice(5, comma);
  const body = url.slice(comma + 1);
  if (header.endsWith(";base64")) {
    return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  }
  return new TextEncoder().encode(decodeURIComponent(body));
}
