/**
 * A dataset view with part of the training split held out, so that a
 * strategy can measure losses on training-distribution samples the model
 * never trains on.
 *
 * @module
 */

import { Random } from "../_random.ts";
import type {
  AudioVisualDataset,
  BatchOptions,
  SampleBatch,
  Split,
} from "../data/types.ts";

/**
 * Chooses `round(fraction * trainSize)` training indices, at least 1 and
 * at most trainSize - 1, uniformly with a seeded shuffle.
 * @throws {Error} If fewer than two training samples exist.
 */
export function chooseHeldOut(
  trainSize: number,
  fraction: number,
  seed: number,
): Set<number> {
  if (trainSize < 2) {
    throw new Error(
      `chooseHeldOut: holding out samples needs at least 2 training ` +
        `samples, got ${trainSize}.`,
    );
  }
  const count = Math.min(
    trainSize - 1,
    Math.max(1, Math.round(fraction * trainSize)),
  );
  const order = new Random(seed).shuffle([...Array(trainSize).keys()]);
  return new Set(order.slice(0, count));
}

/**
 * The source dataset without the held-out training samples. Validation
 * and test pass through unchanged.
 */
export class HeldOutTrainingData implements AudioVisualDataset {
  /** The full dataset. */
  readonly source: AudioVisualDataset;
  /** Training indices the "train" split leaves out. */
  readonly heldOut: ReadonlySet<number>;
  /**
   * A seeded sample of the kept training indices, as many as held out,
   * for estimating the training loss.
   */
  readonly trainingSample: ReadonlySet<number>;
  /** Name of the source. */
  readonly name: string;
  /** Class names of the source. */
  readonly classNames: readonly string[];
  /** Spectrogram size [F, W]. */
  readonly audioShape: readonly [number, number];
  /** Frame stack size [T, H, W, C]. */
  readonly visualShape: readonly [number, number, number, number];
  /** Split sizes, with train reduced by the held-out samples. */
  readonly splitSizes: Readonly<Record<Split, number>>;
  /** Hash of the source: the data are the same. */
  readonly contentHash: string;

  /**
   * Wraps `source`, leaving `heldOut` out of its training split.
   * @param seed Seed of the choice of `trainingSample`.
   */
  constructor(
    source: AudioVisualDataset,
    heldOut: ReadonlySet<number>,
    seed: number,
  ) {
    this.source = source;
    this.heldOut = heldOut;
    this.name = source.name;
    this.classNames = source.classNames;
    this.audioShape = source.audioShape;
    this.visualShape = source.visualShape;
    this.contentHash = source.contentHash;
    this.splitSizes = {
      ...source.splitSizes,
      train: source.splitSizes.train - heldOut.size,
    };
    const kept = [...Array(source.splitSizes.train).keys()]
      .filter((index) => !heldOut.has(index));
    const sample = new Random(seed).shuffle(kept).slice(0, heldOut.size);
    this.trainingSample = new Set(sample);
  }

  /**
   * Yields batches of a split. Training batches come from the source's
   * batches in their order, without the held-out samples, packed again
   * into batches of `batchSize`.
   */
  *batches(split: Split, options: BatchOptions): Iterable<SampleBatch> {
    if (split !== "train") {
      yield* this.source.batches(split, options);
      return;
    }
    const dropLast = (options.training ?? false) &&
      (options.dropLast ?? false);
    yield* this.#pack(
      this.source.batches(split, { ...options, dropLast: false }),
      (index) => !this.heldOut.has(index),
      options.batchSize,
      dropLast,
    );
  }

  /**
   * Yields the training samples in `indices` in evaluation mode (no
   * augmentation), in batches of `batchSize`.
   */
  *subsetBatches(
    indices: ReadonlySet<number>,
    batchSize: number,
  ): Iterable<SampleBatch> {
    // NOTE: the source produces every training sample to find these.
    yield* this.#pack(
      this.source.batches("train", { batchSize, seed: 0, epoch: 0 }),
      (index) => indices.has(index),
      batchSize,
      false,
    );
  }

  /** Settings of the source plus the held-out count. */
  describe(): Record<string, unknown> {
    return {
      ...this.source.describe(),
      heldOutTrainingSamples: this.heldOut.size,
    };
  }

  *#pack(
    batches: Iterable<SampleBatch>,
    keep: (index: number) => boolean,
    batchSize: number,
    dropLast: boolean,
  ): Iterable<SampleBatch> {
    const audioSize = this.audioShape[0] * this.audioShape[1];
    const visualSize = this.visualShape.reduce((a, b) => a * b, 1);
    let batch = emptyBatch(batchSize, audioSize, visualSize);
    for (const source of batches) {
      for (let i = 0; i < source.size; i++) {
        if (!keep(source.indices[i])) continue;
        const b = batch.size++;
        batch.audio.set(
          source.audio.subarray(i * audioSize, (i + 1) * audioSize),
          b * audioSize,
        );
        batch.visual.set(
          source.visual.subarray(i * visualSize, (i + 1) * visualSize),
          b * visualSize,
        );
        batch.labels[b] = source.labels[i];
        batch.indices[b] = source.indices[i];
        if (batch.size === batchSize) {
          yield batch;
          batch = emptyBatch(batchSize, audioSize, visualSize);
        }
      }
    }
    if (batch.size > 0 && !dropLast) {
      const n = batch.size;
      yield {
        size: n,
        audio: batch.audio.slice(0, n * audioSize),
        visual: batch.visual.slice(0, n * visualSize),
        labels: batch.labels.slice(0, n),
        indices: batch.indices.slice(0, n),
      };
    }
  }
}

function emptyBatch(
  capacity: number,
  audioSize: number,
  visualSize: number,
): SampleBatch {
  return {
    size: 0,
    audio: new Float32Array(capacity * audioSize),
    visual: new Float32Array(capacity * visualSize),
    labels: new Int32Array(capacity),
    indices: new Int32Array(capacity),
  };
}
