/**
 * The main job: train naive fusion and CAMDrop with the same seed and
 * model, then write the results table and a Figure-4-style plot.
 *
 * @module
 */

import { join } from "node:path";
import { figure4 } from "../plots/figure4.ts";
import { writeFigureHtml } from "../plots/html.ts";
import { writeFileAtomic } from "../train/files.ts";
import type { RunConfig } from "./config.ts";
import { runAll, type RunAllOptions } from "./parallel.ts";
import type { RunResult } from "./run.ts";
import {
  methodLabel,
  resultRows,
  resultsCsv,
  resultsMarkdown,
} from "./tables.ts";

/** Options of {@linkcode reproduce}. */
export interface ReproOptions extends RunAllOptions {
  /** Folder of figures. */
  figuresDir: string;
}

/** Files written by {@linkcode reproduce}. */
export interface ReproResult {
  /** The finished runs. */
  runs: RunResult[];
  /** Markdown table path. */
  tableMarkdown: string;
  /** CSV table path. */
  tableCsv: string;
  /** Figure path. */
  figure: string;
}

/**
 * Trains each config (reusing finished runs) and writes
 * `<outDir>/results.md`, `<outDir>/results.csv` and
 * `<figuresDir>/figure4-<dataset>.html`.
 */
export async function reproduce(
  configs: RunConfig[],
  options: ReproOptions,
): Promise<ReproResult> {
  const runs = await runAll(configs, options);

  // Tables.
  const rows = resultRows(runs);
  await Deno.mkdir(options.outDir, { recursive: true });
  const tableMarkdown = join(options.outDir, "results.md");
  const tableCsv = join(options.outDir, "results.csv");
  await writeFileAtomic(tableMarkdown, resultsMarkdown(rows));
  await writeFileAtomic(tableCsv, resultsCsv(rows));

  // Figure 4.
  const dataset = configs[0].data.dataset;
  const figure = figure4(
    runs.map((run) => ({
      label: methodLabel(run),
      method: run.config.method,
      metrics: run.metrics,
    })),
    { title: `Unimodal test accuracy and imbalance, ${dataset} data` },
  );
  const figurePath = await writeFigureHtml(
    figure,
    options.figuresDir,
    `figure4-${dataset}`,
    `Figure 4 (${dataset})`,
  );
  return { runs, tableMarkdown, tableCsv, figure: figurePath };
}
