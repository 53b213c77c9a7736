/**
 * Datasets and audio features: the dataset contract, the embedded digits
 * dataset, the on-disk datasets (CREMA-D, AVE, Kinetics-Sounds, manifest)
 * and the log spectrogram.
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
  type CacheStats,
  type ClearedCache,
  clearPreprocessCache,
  CREMAD_EMOTIONS,
  DEFAULT_CACHE_DIR,
  DISK_DATASET_KINDS,
  DISK_LAYOUT_DEFAULTS,
  DISK_SAMPLE_RATE,
  type DiskDataset,
  type DiskDatasetKind,
  type DiskDatasetOptions,
  loadDiskDataset,
} from "./disk.ts";
export {
  type LabelRow,
  PREPARE_LAYOUTS,
  type PrepareFailure,
  type PrepareLayout,
  type PrepareOptions,
  type PrepareProgress,
  type PrepareSummary,
  prepareVideos,
  readLabelList,
} from "./prepare.ts";
export {
  logSpectrogram,
  type Spectrogram,
  SPECTROGRAM_DEFAULTS,
  spectrogramFrames,
  type SpectrogramOptions,
} from "./spectrogram.ts";
