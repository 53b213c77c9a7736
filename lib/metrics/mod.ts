/**
 * Metrics: split accuracies, imbalance ratio, confusion-matrix measures and
 * metric tables.
 *
 * @module
 */

export { imbalanceRatio, SplitAccumulator } from "./classification.ts";
export { confusionMatrix, macroF1, perClassAccuracy } from "./confusion.ts";
export {
  metricsColumns,
  metricsCsv,
  metricsFrame,
  type MetricsRow,
  parseMetricsCsv,
} from "./frame.ts";
