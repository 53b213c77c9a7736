/**
 * Figure 4 of the CAMDrop paper: (a) audio and (b) visual unimodal
 * accuracy per epoch, baseline against CAMDrop, and (c) the imbalance
 * ratio (audio accuracy / visual accuracy) per epoch.
 *
 * @module
 */

import type { MetricsRow } from "../metrics/frame.ts";
import { axis, BASE_LAYOUT, METHOD_COLORS, PALETTE } from "./style.ts";

/** A Plotly figure as plain data. */
export interface PlotlyFigure {
  /** Traces. */
  data: Record<string, unknown>[];
  /** Layout. */
  layout: Record<string, unknown>;
}

/** One curve set: a label, its method (for the colour) and its metrics. */
export interface CurveRun {
  /** Legend label, such as "CAMDrop (r_max 0.3)". */
  label: string;
  /** Method name, used to pick the colour. */
  method: string;
  /** Metrics per epoch. */
  metrics: MetricsRow[];
}

/** Options of {@linkcode figure4}. */
export interface Figure4Options {
  /** Split whose accuracies are plotted. @default "test" */
  split?: "val" | "test";
  /** Unimodal logits kind in the column names. @default "probe" */
  unimodal?: "probe" | "split";
  /** Figure title. */
  title?: string;
}

/**
 * Builds Figure 4 as a Plotly spec with three side-by-side panels.
 * @throws {Error} If a run lacks the needed columns.
 */
export function figure4(
  runs: CurveRun[],
  options: Figure4Options = {},
): PlotlyFigure {
  const split = options.split ?? "test";
  const kind = options.unimodal ?? "probe";
  const panels = [
    { column: `${split}_audio_acc_${kind}`, axis: "", percent: true },
    { column: `${split}_visual_acc_${kind}`, axis: "2", percent: true },
    { column: `${split}_imbalance_${kind}`, axis: "3", percent: false },
  ];
  const data: Record<string, unknown>[] = [];
  const fallback = [
    PALETTE.blue,
    PALETTE.green,
    PALETTE.orange,
    PALETTE.purple,
  ];
  runs.forEach((run, index) => {
    const color = METHOD_COLORS[run.method] ?? fallback[index % 4];
    for (const [p, panel] of panels.entries()) {
      const y = run.metrics.map((row) => {
        const value = row[panel.column];
        if (typeof value !== "number") {
          throw new Error(
            `figure4: run "${run.label}" has no column "${panel.column}".`,
          );
        }
        return panel.percent ? 100 * value : value;
      });
      data.push({
        type: "scatter",
        mode: "lines+markers",
        name: run.label,
        legendgroup: run.label,
        showlegend: p === 0,
        x: run.metrics.map((row) => (row.epoch as number) + 1),
        y,
        xaxis: `x${panel.axis}`,
        yaxis: `y${panel.axis}`,
        line: {
          color,
          width: 2,
          dash: run.method === "naive" ? "dash" : "solid",
        },
        marker: { size: 4, color },
      });
    }
  });
  // Whole epochs only: Plotly would otherwise label 1.5 on short runs.
  const epochAxis = (domain: [number, number]) =>
    axis("Epoch", { domain, tickformat: "d", rangemode: "tozero" });
  return {
    data,
    layout: {
      ...BASE_LAYOUT,
      title: {
        text: options.title ?? `Unimodal accuracy and imbalance (${split})`,
      },
      width: 1050,
      height: 420,
      xaxis: epochAxis([0, 0.28]),
      yaxis: axis("(a) Audio accuracy (%)"),
      xaxis2: { ...epochAxis([0.36, 0.64]), anchor: "y2" },
      yaxis2: { ...axis("(b) Visual accuracy (%)"), anchor: "x2" },
      xaxis3: { ...epochAxis([0.72, 1]), anchor: "y3" },
      yaxis3: { ...axis("(c) Imbalance ratio (audio / visual)"), anchor: "x3" },
    },
  };
}
