import assert from "node:assert/strict";
import { assertNear } from "../../_testing.ts";
import type { ConfigOverrides } from "../config.ts";
import type { RunResult } from "../run.ts";
import { tableCsv, tableJson, tableLatex, tableMarkdown } from "./format.ts";
import { expandGrid, type GridRun, tableDefinition } from "./grids.ts";
import { summarizeTable } from "./summary.ts";

/** Builds a finished run whose best epoch (2) has `testPercent` accuracy. */
function fakeResult(run: GridRun, testPercent: number): RunResult {
  const best = {
    epoch: 1,
    val_acc: 0.5,
    test_acc: testPercent / 100,
    test_audio_acc_probe: 0.3,
    test_visual_acc_probe: 0.2,
  };
  return {
    dir: `/runs/${run.config.name}`,
    config: run.config,
    metrics: [best],
    best,
    reused: true,
  };
}

// Table 3 on CREMA-D with two seeds; accuracies (%) by row/column, seed 0
// then seed 1, with their mean and sample std worked out by hand:
//   naive/sgd 50, 54: mean 52, std sqrt(8) = 2.83
//   naive/adam 60, 60: mean 60, std 0
//   camdrop/sgd 55, 57: mean 56, std sqrt(2) = 1.41
//   camdrop/adam 58, 61: mean 59.5, std sqrt(4.5) = 2.12
const ACCURACY: Record<string, number[]> = {
  "naive/sgd": [50, 54],
  "naive/adam": [60, 60],
  "camdrop/sgd": [55, 57],
  "camdrop/adam": [58, 61],
};
const CREMAD: ConfigOverrides = {
  data: { dataset: "cremad", dataRoot: "/data/cremad" },
};

function table3Summary() {
  const definition = tableDefinition(3);
  const grid = expandGrid(definition, "smoke", [CREMAD], { seeds: 2 });
  const results = grid.map((run) =>
    fakeResult(run, ACCURACY[`${run.row}/${run.column}`][run.seed])
  );
  return summarizeTable(definition, grid, results, 2);
}

Deno.test("summarizeTable() takes mean and sample std", () => {
  const summary = table3Summary();
  const cell = (key: string) =>
    summary.cells.find((c) => `${c.row}/${c.column}` === key)!;
  assertNear(cell("naive/sgd").mean, 52, 1e-9, "naive/sgd mean");
  assertNear(cell("naive/sgd").std, Math.sqrt(8), 1e-9, "naive/sgd std");
  assertNear(cell("camdrop/adam").mean, 59.5, 1e-9, "camdrop/adam mean");
  assertNear(cell("camdrop/adam").std, Math.sqrt(4.5), 1e-9, "std");
  assert.equal(cell("naive/adam").std, 0);
  assert.deepEqual(
    summary.cells.filter((c) => c.best).map((c) => `${c.row}/${c.column}`),
    ["naive/adam", "camdrop/sgd"],
  );
  assert.equal(cell("camdrop/adam").paper, 62.8);
  assert.equal(summary.runs.length, 8);
  assert.equal(summary.runs[0].bestEpoch, 2);
  assertNear(summary.runs[0].testAccuracy, 50, 1e-9, "run accuracy");
  assert.equal(summary.runs[0].evaluation, null);
});

Deno.test("tableMarkdown() bolds the best and shows the paper", () => {
  const markdown = tableMarkdown(table3Summary());
  const lines = markdown.split("\n");
  assert.equal(
    lines[0],
    "## Table 3: test accuracy (%) by optimiser, concat fusion",
  );
  assert.ok(lines.includes("| Method | SGD | Adam |"), markdown);
  assert.ok(lines.includes("|---|---:|---:|"), markdown);
  assert.ok(
    lines.includes(
      "| Naive fusion | 52.0 ± 2.8 (57.8) | **60.0 ± 0.0** (58.6) |",
    ),
    markdown,
  );
  assert.ok(
    lines.includes(
      "| CAMDrop (r_max 0.3) | **56.0 ± 1.4** (63.8) | 59.5 ± 2.1 (62.8) |",
    ),
    markdown,
  );
  assert.match(markdown, /mean ± sample std over seeds 0\.\.1/);
  assert.match(markdown, /In parentheses: the paper's value/);
});

Deno.test("tableCsv() has one line per cell", () => {
  const lines = tableCsv(table3Summary()).trim().split("\n");
  assert.equal(
    lines[0],
    "table,row,row_label,column,column_label,seeds,mean,std,best,paper",
  );
  assert.equal(lines.length, 5);
  assert.equal(
    lines[1],
    '3,naive,"Naive fusion",sgd,"SGD",2,52.00,2.83,false,57.8',
  );
  assert.equal(
    lines[3],
    '3,camdrop,"CAMDrop (r_max 0.3)",sgd,"SGD",2,56.00,1.41,true,63.8',
  );
});

Deno.test("tableLatex() writes a booktabs table", () => {
  const latex = tableLatex(table3Summary());
  const lines = latex.split("\n");
  assert.ok(lines.includes("\\begin{tabular}{lcc}"), latex);
  for (const rule of ["\\toprule", "\\midrule", "\\bottomrule"]) {
    assert.ok(lines.includes(rule), rule);
  }
  assert.ok(lines.includes("Method & SGD & Adam \\\\"), latex);
  assert.ok(
    lines.includes(
      "Naive fusion & 52.0 $\\pm$ 2.8 (57.8) & " +
        "\\textbf{60.0 $\\pm$ 0.0} (58.6) \\\\",
    ),
    latex,
  );
  assert.ok(
    lines.includes(
      "CAMDrop (r\\_max 0.3) & \\textbf{56.0 $\\pm$ 1.4} (63.8) & " +
        "59.5 $\\pm$ 2.1 (62.8) \\\\",
    ),
    latex,
  );
  assert.match(latex, /\\caption\{Table 3: test accuracy \(\\%\)/);
  assert.match(latex, /\\label\{tab:table3\}/);
});

Deno.test("tableJson() keeps every run's numbers", () => {
  const record = JSON.parse(tableJson(table3Summary()));
  assert.equal(record.table, 3);
  assert.equal(record.dataset, "cremad");
  assert.equal(record.seeds, 2);
  assert.equal(record.cells.length, 4);
  assert.equal(record.runs.length, 8);
  assert.deepEqual(
    Object.keys(record.runs[0]),
    [
      "name",
      "row",
      "column",
      "seed",
      "method",
      "fusion",
      "optimizer",
      "batchSize",
      "lr",
      "bestEpoch",
      "valAccuracy",
      "testAccuracy",
      "audioAccuracy",
      "visualAccuracy",
      "evaluation",
    ],
  );
  assert.equal(record.runs[1].name, "cremad-concat-naive-s1");
  assert.equal(record.runs[2].name, "cremad-concat-naive-s0-adam");
});

Deno.test("one-seed Table 1 shows means and spanning rows", () => {
  const definition = tableDefinition(1);
  const grid = expandGrid(definition, "smoke", [], {
    seeds: 1,
    fusions: ["concat", "sum", "audio-only", "visual-only"],
    methods: ["naive"],
  });
  const results = grid.map((run, i) => fakeResult(run, 40 + i));
  const summary = summarizeTable(definition, grid, results, 1);
  const markdown = tableMarkdown(summary);
  const lines = markdown.split("\n");
  // Naive fusion is the only method left, so it is the best of each column.
  assert.ok(lines.includes("| Method | Concat | Sum | FiLM |"), markdown);
  assert.ok(
    lines.includes("| Naive fusion | **40.0** | **41.0** | – |"),
    markdown,
  );
  assert.ok(lines.includes("| Audio only | 42.0 | – | – |"), markdown);
  assert.ok(lines.includes("| Visual only | 43.0 | – | – |"), markdown);
  assert.ok(!lines.some((line) => line.startsWith("| OPM")), "no empty rows");
  assert.doesNotMatch(
    markdown,
    /\(\d+\.\d\)/,
    "no paper values for embedded data",
  );
  assert.match(markdown, /one seed \(0\), so no std/);

  const latex = tableLatex(summary);
  assert.match(
    latex,
    /\\midrule\nAudio only & \\multicolumn\{3\}\{c\}\{42\.0\}/,
  );
  assert.match(
    latex,
    /Naive fusion & \\textbf\{40\.0\} & \\textbf\{41\.0\} & -- \\\\/,
  );

  const csv = tableCsv(summary);
  assert.match(
    csv,
    /\n1,audio-only,"Audio only",all,"All fusions",1,42\.00,,false,\n/,
  );
  const record = JSON.parse(tableJson(summary));
  assert.equal(record.cells[0].std, null);
  assert.equal(record.cells[0].paper, null);
});
