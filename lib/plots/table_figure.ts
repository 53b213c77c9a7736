/**
 * A table summary of `reproduceTable` (Tables 1, 3 and 4) as a grouped
 * bar chart, one group per row and one bar per column. Each bar is the mean
 * test accuracy over seeds with one standard deviation as error bar. Every
 * seed is a point over its bar, and the published value (`PAPER_RESULTS`)
 * is a diamond where one exists for the cell.
 *
 * @module
 */

import {
  SPANNING_COLUMN,
  type TableAxis,
} from "../experiments/tables/grids.ts";
import type { TableSummary } from "../experiments/tables/summary.ts";
import type { PlotlyFigure } from "./figure4.ts";
import { axis, BASE_LAYOUT, PALETTE } from "./style.ts";

/** Options of {@linkcode tableFigure}. */
export interface TableFigureOptions {
  /**
   * First title line; a second line names the dataset, preset and seeds.
   * @default the table's title
   */
  title?: string;
}

const COLUMN_COLORS = [
  PALETTE.blue,
  PALETTE.orange,
  PALETTE.green,
  PALETTE.purple,
  PALETTE.skyBlue,
];

/** Legend label of the single-cell rows (Table 1's unimodal rows). */
const SPANNING_LABEL = "No fusion";

/**
 * Builds a grouped bar chart of a table's cells as a Plotly spec, in %.
 * Cells without runs are left out. A column's error bars are hidden when
 * each of its cells has a single seed.
 * @throws {Error} If the summary has no cells.
 */
export function tableFigure(
  summary: TableSummary,
  options: TableFigureOptions = {},
): PlotlyFigure {
  const { definition } = summary;
  if (summary.cells.length === 0) {
    throw new Error(
      `tableFigure: table ${definition.id} has no cells with runs; train ` +
        `its grid first.`,
    );
  }
  const rowLabel = new Map(definition.rows.map((row) => [row.key, row.label]));
  const columns: TableAxis[] = [...definition.columns];
  if (summary.cells.some((cell) => cell.column === SPANNING_COLUMN)) {
    columns.push({ key: SPANNING_COLUMN, label: SPANNING_LABEL });
  }

  const data: Record<string, unknown>[] = [];
  const paper: Record<string, unknown>[] = [];
  columns.forEach((column, index) => {
    const cells = summary.cells.filter((cell) => cell.column === column.key);
    if (cells.length === 0) return;
    const color = COLUMN_COLORS[index % COLUMN_COLORS.length];
    data.push({
      type: "bar",
      name: column.label,
      legendgroup: column.key,
      offsetgroup: column.key,
      x: cells.map((cell) => rowLabel.get(cell.row) ?? cell.row),
      y: cells.map((cell) => cell.mean),
      error_y: {
        type: "data",
        // A cell of one seed has std NaN and gets a zero-length bar.
        array: cells.map((cell) => Number.isNaN(cell.std) ? 0 : cell.std),
        visible: cells.some((cell) => !Number.isNaN(cell.std)),
        thickness: 1.5,
        width: 5,
        color: PALETTE.black,
      },
      customdata: cells.map((cell) => cell.runs.length),
      hovertemplate: `${column.label}: %{y:.1f}% ` +
        `(mean of %{customdata} seeds)<extra></extra>`,
      marker: { color, opacity: 0.75 },
    });

    // One point per seed, over the bar of its cell.
    const runs = summary.runs.filter((run) => run.column === column.key);
    data.push({
      type: "scatter",
      mode: "markers",
      name: `${column.label}, per seed`,
      legendgroup: column.key,
      offsetgroup: column.key,
      showlegend: false,
      x: runs.map((run) => rowLabel.get(run.row) ?? run.row),
      y: runs.map((run) => run.testAccuracy),
      customdata: runs.map((run) => run.seed),
      hovertemplate: "seed %{customdata}: %{y:.1f}%<extra></extra>",
      marker: {
        color: "#fff",
        size: 6,
        line: { color: PALETTE.black, width: 1 },
      },
    });

    const reported = cells.filter((cell) => cell.paper !== undefined);
    if (reported.length > 0) {
      paper.push({
        type: "scatter",
        mode: "markers",
        name: `Paper, ${column.label}`,
        legendgroup: column.key,
        offsetgroup: column.key,
        x: reported.map((cell) => rowLabel.get(cell.row) ?? cell.row),
        y: reported.map((cell) => cell.paper),
        hovertemplate: `paper: %{y:.1f}%<extra></extra>`,
        marker: { symbol: "diamond", size: 9, color: PALETTE.black },
      });
    }
  });

  const seeds = summary.seeds > 1
    ? `mean ± 1 s.d. over ${summary.seeds} seeds`
    : "one seed";
  const title = options.title ?? definition.title;
  const groups = definition.rows.length;
  return {
    data: [...data, ...paper],
    layout: {
      ...BASE_LAYOUT,
      title: {
        text: `${title}<br><sup>${summary.dataset}, preset ` +
          `${summary.preset}, ${seeds}</sup>`,
        font: { size: 15 },
      },
      margin: { ...BASE_LAYOUT.margin as object, t: 80 },
      barmode: "group",
      // Aligns the seed points and paper diamonds with their bars.
      scattermode: "group",
      width: Math.min(1100, Math.max(680, 160 + groups * 45 * columns.length)),
      height: 480,
      xaxis: axis(definition.rowHeader, { type: "category" }),
      yaxis: axis("Test accuracy (%)", { rangemode: "tozero" }),
    },
  };
}
