/**
 * Balancing methods behind one strategy interface.
 *
 * @module
 */

export type {
  BalanceStrategy,
  Dominance,
  EpochContext,
  LossWeights,
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
  fusedCams,
  maskRatio,
  warmupRMax,
} from "./camdrop.ts";
export { NaiveFusion } from "./naive.ts";
export {
  isEncoderConvKernel,
  modulateEncoderGradients,
  OGM_NOISE_FLOOR,
  type OgmCoefficients,
  ogmCoefficients,
  OgmGe,
  type OgmGeOptions,
} from "./ogm.ts";
export {
  Opm,
  opmDropProbabilities,
  type OpmMode,
  type OpmOptions,
  type OpmProbabilities,
  randomSpatialMask,
  sampleDropFactors,
  survivorScale,
} from "./opm.ts";
export {
  BLEND_STREAMS,
  blendingWeights,
  type BlendStream,
  GradientBlending,
  type GradientBlendingOptions,
  type LossCurve,
  type LossPoint,
  streamLosses,
} from "./gradient_blending.ts";
export {
  classMeanFeatures,
  DISTANCE_FLOOR,
  Pmr,
  type PmrOptions,
  prototypeLogits,
  type Prototypes,
  updatePrototypes,
} from "./pmr.ts";
export {
  createStrategy,
  type MethodName,
  type MethodOptions,
  METHODS,
} from "./registry.ts";
