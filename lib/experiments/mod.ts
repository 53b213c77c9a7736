/**
 * Experiments: configs and presets, single runs, the repro job and its
 * tables.
 *
 * @module
 */

export {
  BACKENDS,
  type ConfigOverrides,
  DATASETS,
  defaultRunName,
  parseConfigYaml,
  PRESET_OVERRIDES,
  type PresetName,
  PRESETS,
  resolveConfig,
  type RunConfig,
  validateConfig,
} from "./config.ts";
export {
  bestEpoch,
  buildModel,
  evaluateRun,
  type EvaluationResult,
  openDataset,
  readFinishedRun,
  type RunOptions,
  type RunResult,
  runTraining,
  strategyOptions,
  TOOLKIT_VERSION,
} from "./run.ts";
export { reproduce, type ReproOptions, type ReproResult } from "./repro.ts";
export {
  methodLabel,
  type ResultRow,
  resultRows,
  resultsCsv,
  resultsMarkdown,
} from "./tables.ts";
