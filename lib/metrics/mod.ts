/**
 * Metrics: split accuracies, imbalance ratio and metric tables.
 *
 * @module
 */

export { imbalanceRatio, SplitAccumulator } from "./classification.ts";
export {
  metricsColumns,
  metricsCsv,
  metricsFrame,
  type MetricsRow,
  parseMetricsCsv,
} from "./frame.ts";
