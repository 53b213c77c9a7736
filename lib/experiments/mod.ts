/**
 * Experiments: configs and presets, single runs and their evaluation, the
 * repro job and its tables, and the grids of the CAMDrop paper's Tables 1,
 * 3 and 4.
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
  evaluateRunFolder,
  type EvaluationResult,
  openDataset,
  readFinishedRun,
  type RunEvaluation,
  type RunOptions,
  type RunResult,
  runTraining,
  strategyOptions,
  TOOLKIT_VERSION,
} from "./run.ts";
export {
  evaluateModel,
  type EvaluationOptions,
  MODALITIES,
  type Modality,
  type ModelEvaluation,
} from "./evaluation.ts";
export {
  type FeatureSet,
  linearProbeAccuracy,
  type LinearProbeOptions,
} from "./linear_probe.ts";
export { runAll, type RunAllOptions } from "./parallel.ts";
export { reproduce, type ReproOptions, type ReproResult } from "./repro.ts";
export {
  type AllOptions,
  type AllPlan,
  type AllResult,
  FIGURE3_R_MAX,
  mergeAll,
  planAll,
  reproduceAll,
  UNAVAILABLE_OUTPUTS,
} from "./all.ts";
export {
  shellQuote,
  SLURM_FILES,
  slurmFiles,
  type SlurmOptions,
} from "./slurm.ts";
export * from "./tables/mod.ts";
export {
  methodLabel,
  type ResultRow,
  resultRows,
  resultsCsv,
  resultsMarkdown,
} from "./tables.ts";
