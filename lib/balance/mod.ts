/**
 * Balancing methods behind one strategy interface.
 *
 * @module
 */

export type {
  BalanceStrategy,
  Dominance,
  EpochContext,
  StepContext,
  TrainingForward,
} from "./strategy.ts";
export {
  CONFIDENCE_FLOOR,
  dominanceFromConfidences,
  dominanceRatios,
  trueClassConfidences,
} from "./dominance.ts";
export {
  CamDrop,
  type CamDropMasks,
  camDropMasks,
  type CamDropOptions,
  maskRatio,
  warmupRMax,
} from "./camdrop.ts";
export { NaiveFusion } from "./naive.ts";
export {
  createStrategy,
  type MethodName,
  type MethodOptions,
  METHODS,
} from "./registry.ts";
