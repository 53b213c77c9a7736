/**
 * The CAMDrop paper's Tables 1, 3 and 4 as run grids: grid definitions, the
 * paper's numbers, aggregation over seeds, and Markdown, CSV, LaTeX and
 * JSON output.
 *
 * @module
 */

export {
  escapeLatex,
  tableCsv,
  tableJson,
  tableLatex,
  tableMarkdown,
} from "./format.ts";
export {
  expandGrid,
  type GridOptions,
  type GridRun,
  gridRunName,
  SPANNING_COLUMN,
  TABLE4_SETTINGS,
  TABLE_IDS,
  type TableAxis,
  type TableCell,
  type TableDefinition,
  tableDefinition,
  type TableId,
  type TableRow,
} from "./grids.ts";
export {
  PAPER_DATASETS,
  PAPER_RESULTS,
  paperAccuracy,
  type PaperDataset,
  type PaperTable,
} from "./paper.ts";
export {
  reproduceTable,
  type TableReproOptions,
  type TableReproResult,
} from "./reproduce.ts";
export {
  type CellSummary,
  summarizeTable,
  type TableRunRecord,
  type TableSummary,
} from "./summary.ts";
