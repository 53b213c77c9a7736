/**
 * Figures as Plotly specs, and their HTML export.
 *
 * @module
 */

export {
  type CurveRun,
  figure4,
  type Figure4Options,
  type PlotlyFigure,
} from "./figure4.ts";
export {
  figureHtml,
  PLOTLY_BUNDLE,
  plotlyBundlePath,
  writeFigureHtml,
} from "./html.ts";
export { axis, BASE_LAYOUT, METHOD_COLORS, PALETTE } from "./style.ts";
