/**
 * Result tables of `deno task repro` as Markdown and CSV.
 *
 * @module
 */

import type { RunResult } from "./run.ts";

/** One row of the main results table. */
export interface ResultRow {
  /** Method label, such as "CAMDrop (r_max 0.3)". */
  method: string;
  /** Fusion head. */
  fusion: string;
  /** Seed. */
  seed: number;
  /** Epoch (from 1) with the best validation accuracy. */
  bestEpoch: number;
  /** Test accuracy at that epoch, in %. */
  testAccuracy: number;
  /** Audio unimodal (probe) test accuracy at that epoch, in %. */
  audioAccuracy: number;
  /** Visual unimodal (probe) test accuracy at that epoch, in %. */
  visualAccuracy: number;
  /** Test imbalance ratio (audio / visual accuracy) of the last epoch. */
  finalImbalance: number;
}

/** Label of a run's method for tables and legends. */
export function methodLabel(run: Pick<RunResult, "config">): string {
  const { method, camdrop } = run.config;
  if (method === "camdrop") return `CAMDrop (r_max ${camdrop.rMax})`;
  if (method === "naive") return "Naive fusion";
  return method;
}

/** Builds the results rows from finished runs. */
export function resultRows(runs: RunResult[]): ResultRow[] {
  return runs.map((run) => {
    const last = run.metrics[run.metrics.length - 1];
    const best = run.best;
    return {
      method: methodLabel(run),
      fusion: run.config.model.fusion,
      seed: run.config.seed,
      bestEpoch: (best.epoch as number) + 1,
      testAccuracy: 100 * (best.test_acc as number),
      audioAccuracy: 100 * (best.test_audio_acc_probe as number),
      visualAccuracy: 100 * (best.test_visual_acc_probe as number),
      finalImbalance: last.test_imbalance_probe as number,
    };
  });
}

const HEADERS = [
  "Method",
  "Fusion",
  "Seed",
  "Best epoch",
  "Test acc. (%)",
  "Audio acc. (%)",
  "Visual acc. (%)",
  "Final imbalance (audio/visual)",
];

function cells(row: ResultRow): string[] {
  return [
    row.method,
    row.fusion,
    String(row.seed),
    String(row.bestEpoch),
    row.testAccuracy.toFixed(1),
    row.audioAccuracy.toFixed(1),
    row.visualAccuracy.toFixed(1),
    row.finalImbalance.toFixed(2),
  ];
}

/** Formats rows as a Markdown table. */
export function resultsMarkdown(rows: ResultRow[]): string {
  const lines = [
    `| ${HEADERS.join(" | ")} |`,
    `|${HEADERS.map((_, i) => i < 2 ? "---" : "---:").join("|")}|`,
    ...rows.map((row) => `| ${cells(row).join(" | ")} |`),
  ];
  return lines.join("\n") + "\n";
}

/** Formats rows as CSV with snake_case headers and full precision. */
export function resultsCsv(rows: ResultRow[]): string {
  const header =
    "method,fusion,seed,best_epoch,test_acc,audio_acc,visual_acc,final_imbalance";
  const lines = rows.map((row) =>
    [
      `"${row.method}"`,
      row.fusion,
      row.seed,
      row.bestEpoch,
      row.testAccuracy.toFixed(2),
      row.audioAccuracy.toFixed(2),
      row.visualAccuracy.toFixed(2),
      row.finalImbalance.toFixed(4),
    ].join(",")
  );
  return [header, ...lines].join("\n") + "\n";
}
