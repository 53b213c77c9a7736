/**
 * Metrics as danfo DataFrames and CSV text.
 *
 * @module
 */

import * as dfd from "danfojs";

/** One row of metrics: column name to number or string. */
export type MetricsRow = Record<string, number | string>;

/**
 * Builds a DataFrame from metric rows; columns are the union of the rows'
 * keys in first-seen order, missing cells are NaN.
 */
export function metricsFrame(rows: MetricsRow[]): dfd.DataFrame {
  const columns = metricsColumns(rows);
  const data = rows.map((row) => columns.map((c) => row[c] ?? NaN));
  return new dfd.DataFrame(data, { columns });
}

/** Columns of `rows` in first-seen order. */
export function metricsColumns(rows: MetricsRow[]): string[] {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
    }
  }
  return columns;
}

/**
 * Formats rows as CSV with a fixed number format (up to 6 significant
 * digits), so that equal runs give byte-identical files.
 */
export function metricsCsv(rows: MetricsRow[]): string {
  const columns = metricsColumns(rows);
  const lines = [columns.join(",")];
  for (const row of rows) {
    lines.push(columns.map((c) => formatCell(row[c])).join(","));
  }
  return lines.join("\n") + "\n";
}

function formatCell(value: number | string | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") {
    return /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
  }
  if (Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) return String(value);
  return String(Number(value.toPrecision(6)));
}

/** Parses CSV written by {@linkcode metricsCsv} back into rows. */
export function parseMetricsCsv(text: string): MetricsRow[] {
  const lines = text.trim().split("\n");
  if (lines.length === 0 || lines[0] === "") return [];
  const columns = lines[0].split(",");
  return lines.slice(1).map((line) => {
    const cells = line.split(",");
    const row: MetricsRow = {};
    columns.forEach((column, i) => {
      const cell = cells[i] ?? "";
      const number = Number(cell);
      row[column] = cell !== "" && !Number.isNaN(number) || cell === "NaN"
        ? number
        : cell;
    });
    return row;
  });
}
