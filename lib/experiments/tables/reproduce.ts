/**
 * The table job of `deno task repro --table N`: trains a table's grid
 * (reusing finished runs), then writes `<outDir>/table<N>.md`, `.csv`,
 * `.tex` and `.json`.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../../train/files.ts";
import type { RunConfig } from "../config.ts";
import { runAll, type RunAllOptions } from "../parallel.ts";
import { evaluateRunFolder, readFinishedRun, type RunResult } from "../run.ts";
import { tableCsv, tableJson, tableLatex, tableMarkdown } from "./format.ts";
import type { GridRun, TableDefinition } from "./grids.ts";
import { summarizeTable, type TableSummary } from "./summary.ts";

/** Options of {@linkcode reproduceTable}. */
export interface TableReproOptions extends RunAllOptions {
  /** Seeds per cell that `grid` was expanded with. */
  seeds: number;
  /** Called before a finished run without `evaluation.json` is evaluated. */
  onEvaluateRun?: (dir: string) => void;
}

/** Runs and files of {@linkcode reproduceTable}. */
export interface TableReproResult {
  /** The finished runs, in grid order. */
  runs: RunResult[];
  /** The aggregated table. */
  summary: TableSummary;
  /** Paths of the written files. */
  files: { markdown: string; csv: string; latex: string; json: string };
}

/**
 * Trains every run of `grid` (see {@linkcode expandGrid}), `jobs` at a
 * time, and writes the table files. Finished runs are reused and
 * unfinished ones resume from their last complete epoch. A finished run
 * without `evaluation.json` gets one from its best checkpoint, in this
 * thread, so a tfjs backend must be set up.
 * @throws {Error} If a finished run folder of the same name contains another
 * config, or a run fails.
 */
export async function reproduceTable(
  definition: TableDefinition,
  grid: GridRun[],
  options: TableReproOptions,
): Promise<TableReproResult> {
  for (const run of grid) await checkFinishedConfig(options.outDir, run.config);
  const runs = await runAll(grid.map((run) => run.config), options);
  for (const run of runs) {
    if (run.evaluation !== undefined) continue;
    options.onEvaluateRun?.(run.dir);
    run.evaluation = await evaluateRunFolder(run.dir, options.evaluation);
  }

  const summary = summarizeTable(definition, grid, runs, options.seeds);
  const stem = join(options.outDir, `table${definition.id}`);
  const files = {
    markdown: `${stem}.md`,
    csv: `${stem}.csv`,
    latex: `${stem}.tex`,
    json: `${stem}.json`,
  };
  await Deno.mkdir(options.outDir, { recursive: true });
  await writeFileAtomic(files.markdown, tableMarkdown(summary));
  await writeFileAtomic(files.csv, tableCsv(summary));
  await writeFileAtomic(files.latex, tableLatex(summary));
  await writeFileAtomic(files.json, tableJson(summary));
  return { runs, summary, files };
}

/**
 * Rejects a finished run folder whose config differs from `config`, since
 * reusing it would put another experiment's number in the table. The error
 * names the first differing key.
 */
async function checkFinishedConfig(
  outDir: string,
  config: RunConfig,
): Promise<void> {
  const dir = join(outDir, config.name);
  const finished = await readFinishedRun(dir);
  if (finished === undefined) return;
  const difference = firstDifference(finished.config, config, "");
  if (difference === undefined) return;
  throw new Error(
    `${dir} contains a finished run with a different config ` +
      `(${difference}); ` +
      `pass another --out folder or delete that run folder.`,
  );
}

/** Describes the first value of `saved` that `expected` does not match. */
function firstDifference(
  saved: unknown,
  expected: unknown,
  path: string,
): string | undefined {
  if (
    saved !== null && typeof saved === "object" &&
    expected !== null && typeof expected === "object"
  ) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(expected)]);
    for (const key of keys) {
      const where = path === "" ? key : `${path}.${key}`;
      const found = firstDifference(
        (saved as Record<string, unknown>)[key],
        (expected as Record<string, unknown>)[key],
        where,
      );
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (saved === expected) return undefined;
  return `${path} is ${JSON.stringify(saved)} there, ` +
    `${JSON.stringify(expected)} here`;
}
