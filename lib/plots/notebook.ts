/**
 * MIME bundles for Jupyter display. The library builds them and never
 * displays anything itself, so a notebook decides where they go:
 * `Deno.jupyter.display(bundle, { raw: true })` in the Deno kernel.
 *
 * @module
 */

import type * as dfd from "danfojs";
import type { PlotlyFigure } from "./figure4.ts";

/** A Jupyter MIME bundle: MIME type to content. */
export type MimeBundle = Record<string, unknown>;

/** MIME type of Plotly figures in JupyterLab and VS Code. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/**
 * Returns a bundle that draws `figure` with Plotly, and a one-line
 * `text/plain` fallback naming its title and trace count for viewers
 * without the Plotly renderer (GitHub's notebook view among them).
 */
export function plotlyBundle(figure: PlotlyFigure): MimeBundle {
  const title = (figure.layout.title as { text?: string } | undefined)?.text;
  return {
    [PLOTLY_MIME]: { data: figure.data, layout: figure.layout },
    "text/plain": `Plotly figure "${title ?? "untitled"}" with ` +
      `${figure.data.length} traces`,
  };
}

/** Options of {@linkcode frameBundle}. */
export interface FrameBundleOptions {
  /** Significant digits of non-integer numbers. @default 4 */
  digits?: number;
  /** Columns to show, in this order. @default every column */
  columns?: string[];
}

/**
 * Returns a bundle with an HTML table and a plain-text table of a danfo
 * DataFrame.
 * @throws {Error} If a requested column is missing.
 */
export function frameBundle(
  frame: dfd.DataFrame,
  options: FrameBundleOptions = {},
): MimeBundle {
  const digits = options.digits ?? 4;
  const all = frame.columns as string[];
  const columns = options.columns ?? all;
  for (const column of columns) {
    if (!all.includes(column)) {
      throw new Error(
        `frameBundle: column "${column}" is missing; the frame has ` +
          `${all.join(", ")}.`,
      );
    }
  }
  const indices = columns.map((column) => all.indexOf(column));
  const rows = (frame.values as unknown[][]).map((row) =>
    indices.map((i) => formatCell(row[i], digits))
  );
  const escape = (text: string) =>
    text.replace(
      /[<>&]/g,
      (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" })[c]!,
    );
  const html = [
    "<table>",
    `<thead><tr>${
      columns.map((c) => `<th>${escape(c)}</th>`).join("")
    }</tr></thead>`,
    "<tbody>",
    ...rows.map((row) =>
      `<tr>${row.map((cell) => `<td>${escape(cell)}</td>`).join("")}</tr>`
    ),
    "</tbody>",
    "</table>",
  ].join("\n");
  const widths = columns.map((column, c) =>
    Math.max(column.length, ...rows.map((row) => row[c].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, c) => cell.padStart(widths[c])).join("  ");
  const text = [line(columns), ...rows.map(line)].join("\n");
  return { "text/html": html, "text/plain": text };
}

function formatCell(value: unknown, digits: number): string {
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
  return String(Number(value.toPrecision(digits)));
}
