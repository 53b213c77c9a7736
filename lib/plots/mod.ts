/**
 * Figures as Plotly specs (Figures 1, 3 and 4 and the tables as bar
 * charts), their HTML, PNG, SVG and PDF export, and MIME bundles for
 * notebooks.
 *
 * @module
 */

export {
  type Figure1Data,
  figure1Data,
  type Figure1DataOptions,
  type Figure1Sample,
  type Grid,
  maskedCamShare,
  type ModalityMaps,
} from "./figure1_data.ts";
export { figure1, type Figure1Options } from "./figure1.ts";
export {
  figure3,
  type Figure3Options,
  type Figure3Run,
  type RMaxSummary,
  summarizeByRMax,
} from "./figure3.ts";
export {
  type CurveRun,
  figure4,
  type Figure4Options,
  type PlotlyFigure,
} from "./figure4.ts";
export { tableFigure, type TableFigureOptions } from "./table_figure.ts";
export {
  CHROMIUM_ARGS,
  decodeDataUrl,
  DEFAULT_CHROMIUM_PATH,
  exportFigures,
  type ExportOptions,
  type ExportResult,
  FIGURE_FORMATS,
  type FigureFormat,
  type NamedFigure,
} from "./export.ts";
export {
  figureHtml,
  PLOTLY_BUNDLE,
  plotlyBundlePath,
  writeFigureHtml,
} from "./html.ts";
export {
  frameBundle,
  type FrameBundleOptions,
  type MimeBundle,
  PLOTLY_MIME,
  plotlyBundle,
} from "./notebook.ts";
export {
  ACTIVATION_COLORSCALE,
  axis,
  BASE_LAYOUT,
  CAMDROP_MASK_COLOR,
  INPUT_COLORSCALE,
  METHOD_COLORS,
  PALETTE,
  RANDOM_MASK_COLOR,
} from "./style.ts";
