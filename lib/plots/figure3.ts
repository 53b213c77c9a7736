/**
 * Figure 3 of the CAMDrop paper: test accuracy against the maximum masking
 * ratio r_max, one line per dataset, with the mean and standard deviation
 * over seeds. Naive-fusion runs of the same dataset appear as a dashed
 * reference line.
 *
 * @module
 */

import type { MetricsRow } from "../metrics/frame.ts";
import type { PlotlyFigure } from "./figure4.ts";
import { axis, BASE_LAYOUT, PALETTE } from "./style.ts";

/** The parts of a finished run that Figure 3 reads. */
export interface Figure3Run {
  /**
   * The fields of a resolved run config that Figure 3 groups
   * by: method, seed, dataset and r_max.
   */
  config: {
    method: string;
    seed: number;
    data: { dataset: string };
    camdrop: { rMax: number };
  };
  /** Metrics of the best epoch on validation accuracy. */
  best: MetricsRow;
}

/** Accuracy of one dataset and r_max over seeds. */
export interface RMaxSummary {
  /** Dataset name. */
  dataset: string;
  /** Maximum masking ratio; NaN for the naive-fusion reference. */
  rMax: number;
  /** Mean accuracy in [0, 1]. */
  mean: number;
  /**
   * Sample standard deviation (n - 1); NaN for a single seed, as in the
   * table summaries, since one seed has no spread to measure.
   */
  std: number;
  /** Number of seeds. */
  n: number;
  /** The seeds, in run order. */
  seeds: number[];
}

/** Options of {@linkcode figure3}. */
export interface Figure3Options {
  /** Split whose accuracy at the best epoch is plotted. @default "test" */
  split?: "val" | "test";
  /** Figure title. */
  title?: string;
}

const DATASET_COLORS = [
  PALETTE.vermillion,
  PALETTE.blue,
  PALETTE.green,
  PALETTE.orange,
  PALETTE.purple,
];

/**
 * Groups CAMDrop runs by dataset and r_max, and naive-fusion runs by
 * dataset (rMax NaN), and returns the mean and spread of accuracy over
 * seeds, sorted by dataset and r_max. Other methods are ignored.
 * @throws {Error} If a run's best row lacks `<split>_acc`.
 */
export function summarizeByRMax(
  runs: Figure3Run[],
  split: "val" | "test" = "test",
): RMaxSummary[] {
  const groups = new Map<
    string,
    { dataset: string; rMax: number; accuracies: number[]; seeds: number[] }
  >();
  for (const run of runs) {
    const method = run.config.method;
    if (method !== "camdrop" && method !== "naive") continue;
    const accuracy = run.best[`${split}_acc`];
    if (typeof accuracy !== "number") {
      throw new Error(
        `summarizeByRMax: a ${method} run (seed ${run.config.seed}) has no ` +
          `"${split}_acc" in its best row.`,
      );
    }
    const dataset = run.config.data.dataset;
    const rMax = method === "camdrop" ? run.config.camdrop.rMax : NaN;
    const key = `${dataset}\u0000${rMax}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { dataset, rMax, accuracies: [], seeds: [] };
      groups.set(key, group);
    }
    group.accuracies.push(accuracy);
    group.seeds.push(run.config.seed);
  }
  const summaries = [...groups.values()].map((group) => {
    const n = group.accuracies.length;
    const mean = group.accuracies.reduce((a, b) => a + b, 0) / n;
    const squares = group.accuracies.reduce((a, b) => a + (b - mean) ** 2, 0);
    return {
      dataset: group.dataset,
      rMax: group.rMax,
      mean,
      std: n > 1 ? Math.sqrt(squares / (n - 1)) : NaN,
      n,
      seeds: group.seeds,
    };
  });
  // NaN (the reference) sorts first within a dataset.
  return summaries.sort((a, b) =>
    a.dataset.localeCompare(b.dataset) ||
    (Number.isNaN(a.rMax) ? -1 : Number.isNaN(b.rMax) ? 1 : a.rMax - b.rMax)
  );
}

/**
 * Builds Figure 3 as a Plotly spec: accuracy (%) against r_max per
 * dataset, error bars of one standard deviation over seeds.
 * @throws {Error} If no CAMDrop run is given.
 */
export function figure3(
  runs: Figure3Run[],
  options: Figure3Options = {},
): PlotlyFigure {
  const split = options.split ?? "test";
  const summaries = summarizeByRMax(runs, split);
  const datasets = [
    ...new Set(
      summaries.filter((s) => !Number.isNaN(s.rMax)).map((s) => s.dataset),
    ),
  ];
  if (datasets.length === 0) {
    throw new Error(
      "figure3: no CAMDrop run given; Figure 3 needs at least one.",
    );
  }
  const rMaxValues = summaries.filter((s) => !Number.isNaN(s.rMax)).map((s) =>
    s.rMax
  );
  const xRange = [
    Math.min(...rMaxValues) - 0.05,
    Math.max(...rMaxValues) + 0.05,
  ];
  const data: Record<string, unknown>[] = [];
  const maxSeeds = Math.max(...summaries.map((s) => s.n));
  datasets.forEach((dataset, index) => {
    const color = DATASET_COLORS[index % DATASET_COLORS.length];
    const points = summaries.filter((s) =>
      s.dataset === dataset && !Number.isNaN(s.rMax)
    );
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: `CAMDrop, ${dataset}`,
      legendgroup: dataset,
      x: points.map((p) => p.rMax),
      y: points.map((p) => 100 * p.mean),
      error_y: {
        type: "data",
        // A point from one seed gets no bar.
        array: points.map((p) => Number.isNaN(p.std) ? 0 : 100 * p.std),
        visible: maxSeeds > 1,
        thickness: 1.5,
        width: 5,
        color,
      },
      customdata: points.map((p) => p.n),
      hovertemplate:
        "r_max %{x}: %{y:.1f}% (%{customdata} seeds)<extra></extra>",
      line: { color, width: 2 },
      marker: { color, size: 7 },
    });
    const reference = summaries.find((s) =>
      s.dataset === dataset && Number.isNaN(s.rMax)
    );
    if (reference !== undefined) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: `Naive fusion, ${dataset}`,
        legendgroup: dataset,
        x: xRange,
        y: [100 * reference.mean, 100 * reference.mean],
        line: { color, width: 1.5, dash: "dash" },
        hovertemplate:
          `naive fusion: %{y:.1f}% (${reference.n} seeds)<extra></extra>`,
      });
    }
  });
  const spread = maxSeeds > 1 ? "mean ± 1 s.d. over seeds" : "one seed";
  return {
    data,
    layout: {
      ...BASE_LAYOUT,
      title: {
        text: options.title ??
          `${
            split === "test" ? "Test" : "Validation"
          } accuracy against r_max (${spread})`,
      },
      width: 520,
      height: 420,
      xaxis: axis("Maximum masking ratio r_max (fraction of positions)", {
        range: xRange,
        dtick: 0.1,
      }),
      yaxis: axis(`${split === "test" ? "Test" : "Validation"} accuracy (%)`),
    },
  };
}
