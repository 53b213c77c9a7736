/**
 * Test accuracies (%) that the CAMDrop paper ("CAMDrop: GradCAM-guided
 * dynamic feature dropping for multimodal balanced learning") reports in
 * its Tables 1, 3 and 4, keyed by table, dataset, row and column as in
 * {@linkcode tableDefinition}. A row that the paper leaves empty (PMR on
 * AVE and Kinetics-Sounds) is absent.
 *
 * @module
 */

import type { TableId } from "./grids.ts";

/** Datasets the paper reports on. */
export const PAPER_DATASETS = ["cremad", "ave", "ks"] as const;

/** A dataset the paper reports on. */
export type PaperDataset = typeof PAPER_DATASETS[number];

/** Accuracy (%) by row key, then column key. */
export type PaperTable = Record<string, Record<string, number>>;

/** Concat, sum and FiLM values of one Table 1 row. */
function fusions(concat: number, sum: number, film: number) {
  return { concat, sum, film };
}

/** Values of one row in the column of every fusion. */
function spanning(value: number) {
  return { all: value };
}

/** The paper's accuracies (%), by table and dataset. */
export const PAPER_RESULTS: Record<
  TableId,
  Record<PaperDataset, PaperTable>
> = {
  1: {
    cremad: {
      "naive": fusions(57.8, 57.5, 59.9),
      "gb": fusions(59.7, 58.6, 59.1),
      "ogm-ge": fusions(59.7, 62.0, 59.6),
      "opm": fusions(60.3, 61.2, 61.2),
      "pmr": fusions(61.1, 59.4, 61.8),
      "camdrop-r0.1": fusions(61.7, 62.5, 62.9),
      "camdrop-r0.3": fusions(63.8, 63.6, 63.3),
      "camdrop-r0.5": fusions(62.0, 61.6, 62.2),
      "audio-only": spanning(57.3),
      "visual-only": spanning(29.0),
    },
    ave: {
      "naive": fusions(60.7, 60.2, 62.4),
      "gb": fusions(63.9, 62.2, 62.7),
      "ogm-ge": fusions(62.4, 61.4, 62.1),
      "opm": fusions(61.9, 60.7, 63.2),
      "camdrop-r0.1": fusions(65.4, 64.0, 63.4),
      "camdrop-r0.3": fusions(64.9, 63.9, 64.2),
      "camdrop-r0.5": fusions(64.4, 63.4, 63.2),
      "audio-only": spanning(55.0),
      "visual-only": spanning(33.6),
    },
    ks: {
      "naive": fusions(50.4, 50.5, 49.4),
      "gb": fusions(53.0, 52.2, 49.1),
      "ogm-ge": fusions(51.3, 52.6, 52.3),
      "opm": fusions(51.0, 51.7, 52.5),
      "camdrop-r0.1": fusions(52.7, 52.4, 52.3),
      "camdrop-r0.3": fusions(52.9, 53.6, 53.0),
      "camdrop-r0.5": fusions(53.1, 52.4, 53.4),
      "audio-only": spanning(30.1),
      "visual-only": spanning(29.9),
    },
  },
  3: {
    cremad: {
      naive: { sgd: 57.8, adam: 58.6 },
      camdrop: { sgd: 63.8, adam: 62.8 },
    },
    ave: {
      naive: { sgd: 60.7, adam: 61.2 },
      camdrop: { sgd: 64.9, adam: 64.9 },
    },
    ks: {
      naive: { sgd: 50.4, adam: 50.6 },
      camdrop: { sgd: 52.9, adam: 53.7 },
    },
  },
  4: {
    cremad: {
      "b16-lr0.001": { camdrop: 63.8 },
      "b64-lr0.001": { camdrop: 59.8 },
      "b16-lr0.0005": { camdrop: 61.0 },
      "b16-lr0.0001": { camdrop: 55.8 },
    },
    ave: {
      "b16-lr0.001": { camdrop: 64.9 },
      "b64-lr0.001": { camdrop: 61.9 },
      "b16-lr0.0005": { camdrop: 64.4 },
      "b16-lr0.0001": { camdrop: 56.0 },
    },
    ks: {
      "b16-lr0.001": { camdrop: 52.9 },
      "b64-lr0.001": { camdrop: 51.7 },
      "b16-lr0.0005": { camdrop: 52.6 },
      "b16-lr0.0001": { camdrop: 52.3 },
    },
  },
};

/**
 * Returns the paper's accuracy (%) of one cell, or undefined when the
 * dataset is not one of the paper's or the paper leaves the cell empty.
 */
export function paperAccuracy(
  table: TableId,
  dataset: string,
  row: string,
  column: string,
): number | undefined {
  if (!(PAPER_DATASETS as readonly string[]).includes(dataset)) {
    return undefined;
  }
  return PAPER_RESULTS[table][dataset as PaperDataset][row]?.[column];
}
