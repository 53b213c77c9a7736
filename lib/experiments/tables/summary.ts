/**
 * Aggregation of a table's finished runs into cells: mean and std over
 * seeds of the test accuracy at the best validation epoch, the best cell
 * per column and the paper's value beside each.
 *
 * @module
 */

import type { RunEvaluation, RunResult } from "../run.ts";
import {
  type GridRun,
  SPANNING_COLUMN,
  type TableDefinition,
} from "./grids.ts";
import { paperAccuracy } from "./paper.ts";

/** One run's numbers, as written to `table<N>.json`. */
export interface TableRunRecord {
  /** Run folder name. */
  name: string;
  /** Row key. */
  row: string;
  /** Column key. */
  column: string;
  /** Seed. */
  seed: number;
  /** Balancing method. */
  method: string;
  /** Fusion head. */
  fusion: string;
  /** CAMDrop r_max, for CAMDrop runs. */
  rMax?: number;
  /** Optimiser. */
  optimizer: string;
  /** Training batch size. */
  batchSize: number;
  /** Initial learning rate. */
  lr: number;
  /** Epoch with the best validation accuracy, from 1. */
  bestEpoch: number;
  /** Validation accuracy at that epoch, in %. */
  valAccuracy: number;
  /** Test accuracy at that epoch, in %. */
  testAccuracy: number;
  /** Audio probe-head test accuracy at that epoch, in %. */
  audioAccuracy: number;
  /** Visual probe-head test accuracy at that epoch, in %. */
  visualAccuracy: number;
  /** The run's `evaluation.json`, or null when it has none. */
  evaluation: RunEvaluation | null;
}

/** One table cell. */
export interface CellSummary {
  /** Row key. */
  row: string;
  /** Column key. */
  column: string;
  /** Runs (one per seed) the cell aggregates. */
  runs: string[];
  /** Mean test accuracy over seeds, in %. */
  mean: number;
  /** Sample std (n - 1) over seeds, in %; NaN for a single seed. */
  std: number;
  /** Highest mean of its column, as shown to one decimal. */
  best: boolean;
  /** The paper's value, in %, when it reports this cell. */
  paper?: number;
}

/** A table ready to format. */
export interface TableSummary {
  /** Layout. */
  definition: TableDefinition;
  /** Dataset all runs used. */
  dataset: string;
  /** Preset all runs started from. */
  preset: string;
  /** Seeds per cell. */
  seeds: number;
  /** Cells with at least one run, in row order, then column order. */
  cells: CellSummary[];
  /** Every run's numbers, in grid order. */
  runs: TableRunRecord[];
}

/**
 * Aggregates finished runs into a table; `results[i]` is the run of
 * `grid[i]`. Cells removed by filters are left out.
 * @throws {Error} If the two lists differ in length.
 */
export function summarizeTable(
  definition: TableDefinition,
  grid: GridRun[],
  results: RunResult[],
  seeds: number,
): TableSummary {
  if (grid.length !== results.length) {
    throw new Error(
      `summarizeTable: ${grid.length} grid runs but ${results.length} ` +
        `results; pass the results of runAll for the same grid.`,
    );
  }
  const runs = grid.map((run, i) => runRecord(run, results[i]));
  const dataset = grid[0].config.data.dataset;
  const cells: CellSummary[] = [];
  for (const cell of definition.cells) {
    const members = runs.filter((run) =>
      run.row === cell.row && run.column === cell.column
    );
    if (members.length === 0) continue;
    const accuracies = members.map((run) => run.testAccuracy);
    cells.push({
      row: cell.row,
      column: cell.column,
      runs: members.map((run) => run.name),
      mean: mean(accuracies),
      std: sampleStd(accuracies),
      best: false,
      paper: paperAccuracy(definition.id, dataset, cell.row, cell.column),
    });
  }
  markBest(cells);
  return {
    definition,
    dataset,
    preset: grid[0].config.preset,
    seeds,
    cells,
    runs,
  };
}

function runRecord(run: GridRun, result: RunResult): TableRunRecord {
  const { config } = run;
  const best = result.best;
  return {
    name: config.name,
    row: run.row,
    column: run.column,
    seed: run.seed,
    method: config.method,
    fusion: config.model.fusion,
    rMax: config.method === "camdrop" ? config.camdrop.rMax : undefined,
    optimizer: config.train.optimizer,
    batchSize: config.train.batchSize,
    lr: config.train.lr,
    bestEpoch: (best.epoch as number) + 1,
    valAccuracy: 100 * (best.val_acc as number),
    testAccuracy: 100 * (best.test_acc as number),
    audioAccuracy: 100 * (best.test_audio_acc_probe as number),
    visualAccuracy: 100 * (best.test_visual_acc_probe as number),
    evaluation: result.evaluation ?? null,
  };
}

/** Marks the highest mean per column; spanning cells are not compared. */
function markBest(cells: CellSummary[]): void {
  const byColumn = new Map<string, CellSummary[]>();
  for (const cell of cells) {
    const list = byColumn.get(cell.column) ?? [];
    list.push(cell);
    byColumn.set(cell.column, list);
  }
  for (const [column, list] of byColumn) {
    if (column === SPANNING_COLUMN) continue;
    // Compare the values as shown, so that cells that print alike are
    // both bold.
    const shown = list.map((cell) => Number(cell.mean.toFixed(1)));
    const top = Math.max(...shown);
    list.forEach((cell, i) => cell.best = shown[i] === top);
  }
}

/** Arithmetic mean. */
function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Sample standard deviation (divides by n - 1); NaN below two values. */
function sampleStd(values: number[]): number {
  if (values.length < 2) return NaN;
  const m = mean(values);
  const squares = values.reduce((sum, value) => sum + (value - m) ** 2, 0);
  return Math.sqrt(squares / (values.length - 1));
}
