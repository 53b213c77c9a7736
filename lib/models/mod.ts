/**
 * Models: ResNet18 encoders, fusion heads and the audio-visual model.
 *
 * @module
 */

export {
  AudioVisualModel,
  type AudioVisualModelOptions,
  type FeatureMaps,
  type ModelOutputs,
  type PooledFeatures,
  stopGradient,
  type UnimodalKind,
} from "./model.ts";
export {
  addDense,
  dense,
  FusionHead,
  type FusionKind,
  FUSIONS,
  type ModalityLogits,
} from "./fusion.ts";
export {
  applyBatchNormUpdates,
  type BatchNormUpdate,
  ResNet18,
  type ResNet18Options,
  type Stem,
} from "./resnet.ts";
export { ParameterStore, type StoredTensor } from "./parameters.ts";
