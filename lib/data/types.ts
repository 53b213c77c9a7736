/**
 * The contract between datasets and the trainer. A dataset yields batches
 * of plain typed arrays; the trainer turns them into tensors, so loaders
 * never touch tfjs and can be tested without a backend.
 *
 * Axis names used across the project: B batch, T frames, F frequency bins,
 * W time frames (spectrogram) or width (image), H height, C channels.
 *
 * @module
 */

/** A named part of a dataset. */
export type Split = "train" | "val" | "test";

/** One batch in the layouts the models take (tfjs NHWC). */
export interface SampleBatch {
  /** Number of samples B in this batch. */
  size: number;
  /** Log spectrograms, shape [B, F, W, 1] flattened row-major. */
  audio: Float32Array;
  /** Normalised frames, shape [B, T, H, W, C] flattened row-major. */
  visual: Float32Array;
  /** Class indices in [0, K), length B. */
  labels: Int32Array;
  /** Position of each sample in its split, length B. */
  indices: Int32Array;
}

/** How to cut a split into batches. */
export interface BatchOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Run seed; with `epoch` it fixes order, frame choice and noise. */
  seed: number;
  /** Epoch counted from 0; training noise and order change with it. */
  epoch: number;
  /**
   * Training mode: shuffled order, random augmentation and per-epoch noise.
   * Evaluation mode (false) gives the same batches for every epoch.
   * @default false
   */
  training?: boolean;
  /**
   * Drops a last batch smaller than `batchSize` (training only; batch norm
   * statistics of a batch of one are meaningless).
   * @default false
   */
  dropLast?: boolean;
}

/** An audio-visual classification dataset with train, val and test splits. */
export interface AudioVisualDataset {
  /** Short name recorded in run configs, such as "embedded-digits". */
  readonly name: string;
  /** Class names; index i is label i. */
  readonly classNames: readonly string[];
  /** Spectrogram size [F, W]. */
  readonly audioShape: readonly [number, number];
  /** Frame stack size [T, H, W, C]. */
  readonly visualShape: readonly [number, number, number, number];
  /** Samples per split. */
  readonly splitSizes: Readonly<Record<Split, number>>;
  /**
   * SHA-256 (hex) over the source files and the preprocessing settings;
   * recorded in every run so results can be traced to their data.
   */
  readonly contentHash: string;
  /** Yields the batches of one split for one epoch. */
  batches(split: Split, options: BatchOptions): Iterable<SampleBatch>;
  /** Resolved settings as plain data, saved in the run config. */
  describe(): Record<string, unknown>;
}
