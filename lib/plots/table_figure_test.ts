import assert from "node:assert/strict";
import {
  expandGrid,
  type GridRun,
  tableDefinition,
} from "../experiments/tables/grids.ts";
import { summarizeTable } from "../experiments/tables/summary.ts";
import type { RunResult } from "../experiments/run.ts";
import { tableFigure } from "./table_figure.ts";

interface Trace {
  type: string;
  name: string;
  x: string[];
  y: number[];
  showlegend?: boolean;
  offsetgroup?: string;
  error_y?: { array: number[]; visible: boolean };
}

/** Builds a finished run of `run` whose best epoch has this test accuracy. */
function result(run: GridRun, testAccuracy: number): RunResult {
  const best = {
    epoch: 1,
    val_acc: 0.5,
    test_acc: testAccuracy,
    test_audio_acc_probe: 0.4,
    test_visual_acc_probe: 0.2,
  };
  return {
    dir: run.config.name,
    config: run.config,
    metrics: [best],
    best,
    reused: false,
  };
}

/** Summarizes Table 3's smoke grid with test accuracy from `accuracy`. */
function table3(seeds: number, accuracy: (run: GridRun) => number) {
  const definition = tableDefinition(3);
  const grid = expandGrid(definition, "smoke", [], { seeds });
  const results = grid.map((run) => result(run, accuracy(run)));
  return summarizeTable(definition, grid, results, seeds);
}

Deno.test("tableFigure() draws one bar per column", () => {
  // Accuracy 0.1 * (seed + 1), plus 0.2 for Adam and 0.4 for CAMDrop.
  const summary = table3(
    2,
    (run) =>
      0.1 * (run.seed + 1) + (run.column === "adam" ? 0.2 : 0) +
      (run.row === "camdrop" ? 0.4 : 0),
  );
  const traces = tableFigure(summary).data as unknown as Trace[];
  const bars = traces.filter((t) => t.type === "bar");
  assert.deepEqual(bars.map((t) => t.name), ["SGD", "Adam"]);
  assert.deepEqual(bars[0].x, ["Naive fusion", "CAMDrop (r_max 0.3)"]);
  // Means over seeds 0 and 1: (10 + 20) / 2 = 15, in %.
  assert.ok(Math.abs(bars[0].y[0] - 15) < 1e-9);
  assert.ok(Math.abs(bars[0].y[1] - 55) < 1e-9);
  assert.ok(Math.abs(bars[1].y[0] - 35) < 1e-9);
  // Sample std of 10 and 20: sqrt(50).
  assert.ok(Math.abs(bars[0].error_y!.array[0] - Math.sqrt(50)) < 1e-9);
  assert.equal(bars[0].error_y!.visible, true);
});

Deno.test("tableFigure() puts every seed over its bar", () => {
  const summary = table3(2, (run) => 0.1 * (run.seed + 1));
  const traces = tableFigure(summary).data as unknown as Trace[];
  const points = traces.filter((t) => t.type === "scatter");
  assert.deepEqual(points.map((t) => t.name), [
    "SGD, per seed",
    "Adam, per seed",
  ]);
  assert.equal(points[0].offsetgroup, "sgd");
  assert.equal(points[0].showlegend, false);
  assert.deepEqual(points[0].x, [
    "Naive fusion",
    "Naive fusion",
    "CAMDrop (r_max 0.3)",
    "CAMDrop (r_max 0.3)",
  ]);
  assert.equal(points[0].y.length, 4);
  assert.ok(Math.abs(points[0].y[0] - 10) < 1e-9);
  assert.ok(Math.abs(points[0].y[1] - 20) < 1e-9);
});

Deno.test("tableFigure() hides error bars for one seed", () => {
  const summary = table3(1, () => 0.3);
  const traces = tableFigure(summary).data as unknown as Trace[];
  const bar = traces.find((t) => t.type === "bar")!;
  assert.equal(bar.error_y!.visible, false);
  assert.deepEqual(bar.error_y!.array, [0, 0]);
});

Deno.test("tableFigure() adds the paper's values", () => {
  const summary = table3(1, () => 0.5);
  // The embedded data has no paper values, so give two cells one.
  summary.cells[0].paper = 57.8;
  summary.cells[2].paper = 63.8;
  const traces = tableFigure(summary).data as unknown as Trace[];
  const paper = traces.filter((t) => t.name.startsWith("Paper"));
  assert.deepEqual(paper.map((t) => t.name), ["Paper, SGD"]);
  assert.deepEqual(paper[0].x, ["Naive fusion", "CAMDrop (r_max 0.3)"]);
  assert.deepEqual(paper[0].y, [57.8, 63.8]);
});

Deno.test("tableFigure() draws Table 4's settings", () => {
  const definition = tableDefinition(4);
  const grid = expandGrid(definition, "smoke", [], { seeds: 1 });
  const results = grid.map((run, i) => result(run, 0.1 * (i + 1)));
  const summary = summarizeTable(definition, grid, results, 1);
  const figure = tableFigure(summary, { title: "Table 4, smoke" });
  const traces = figure.data as unknown as Trace[];
  const bars = traces.filter((t) => t.type === "bar");
  assert.equal(bars.length, 1);
  assert.deepEqual(bars[0].x, [
    "batch 16, lr 0.001",
    "batch 64, lr 0.001",
    "batch 16, lr 0.0005",
    "batch 16, lr 0.0001",
  ]);
  assert.ok(Math.abs(bars[0].y[3] - 40) < 1e-9);
  const title = figure.layout.title as { text: string };
  assert.match(title.text, /^Table 4, smoke<br>/);
  assert.match(title.text, /embedded, preset smoke, one seed/);
});

Deno.test("tableFigure() rejects a table without cells", () => {
  const summary = table3(1, () => 0.5);
  summary.cells = [];
  assert.throws(() => tableFigure(summary), /table 3 has no cells/);
});
