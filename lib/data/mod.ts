/**
 * Datasets and audio features: the dataset contract, the embedded digits
 * dataset and the log spectrogram.
 *
 * @module
 */

export type {
  AudioVisualDataset,
  BatchOptions,
  SampleBatch,
  Split,
} from "./types.ts";
export {
  type AudioNoise,
  EMBEDDED_DEFAULTS,
  type EmbeddedDigitsOptions,
  loadEmbeddedDigits,
  MNIST_MEAN,
  MNIST_STD,
} from "./embedded.ts";
export {
  logSpectrogram,
  type Spectrogram,
  SPECTROGRAM_DEFAULTS,
  spectrogramFrames,
  type SpectrogramOptions,
} from "./spectrogram.ts";
