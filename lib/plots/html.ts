/**
 * Writes Plotly figures as HTML pages. The plotly.js bundle from the
 * `plotly.js-dist` package is copied once into the output folder and
 * referenced by each page, so pages work offline without embedding 11 MB
 * each.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { writeFileAtomic } from "../train/files.ts";
import type { PlotlyFigure } from "./figure4.ts";

const require = createRequire(import.meta.url);

/** File name of the copied bundle, beside the pages. */
export const PLOTLY_BUNDLE = "plotly.js";

/** Path of plotly.js inside node_modules. */
export function plotlyBundlePath(): string {
  return join(
    dirname(require.resolve("plotly.js-dist/package.json")),
    "plotly.js",
  );
}

/** Returns a standalone HTML page that draws `figure`. */
export function figureHtml(figure: PlotlyFigure, title: string): string {
  const escaped = title.replace(
    /[<>&]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" })[c]!,
  );
  // "</" inside the JSON would end the script element early.
  const spec = JSON.stringify(figure).replaceAll("</", "<\\/");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escaped}</title>
<script src="${PLOTLY_BUNDLE}"></script>
</head>
<body style="margin:0;background:#fff">
<div id="figure"></div>
<script>
const spec = ${spec};
Plotly.newPlot("figure", spec.data, spec.layout, {responsive: true, displaylogo: false});
</script>
</body>
</html>
`;
}

/**
 * Writes `figure` as `<dir>/<name>.html` (atomically) and copies the
 * plotly.js bundle into `dir` when it is missing.
 * @returns The page's path.
 */
export async function writeFigureHtml(
  figure: PlotlyFigure,
  dir: string,
  name: string,
  title = name,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const bundle = join(dir, PLOTLY_BUNDLE);
  try {
    await Deno.stat(bundle);
  } catch {
    await writeFileAtomic(bundle, await Deno.readFile(plotlyBundlePath()));
  }
  const path = join(dir, `${name}.html`);
  await writeFileAtomic(path, figureHtml(figure, title));
  return path;
}
