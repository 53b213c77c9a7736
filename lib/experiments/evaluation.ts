/**
 * Evaluation of a trained model beyond test accuracy: macro-F1, per-class
 * accuracy and the confusion matrix of the fused prediction, linear-probe
 * accuracy of each frozen encoder, and accuracy with one modality missing
 * (its input zeroed) or corrupted by Gaussian noise.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";
import type { AudioVisualDataset, SampleBatch, Split } from "../data/types.ts";
import {
  confusionMatrix,
  macroF1,
  perClassAccuracy,
} from "../metrics/confusion.ts";
import type { AudioVisualModel } from "../models/model.ts";
import { type FeatureSet, linearProbeAccuracy } from "./linear_probe.ts";

/** The two input modalities. */
export const MODALITIES = ["audio", "visual"] as const;

/** An input modality. */
export type Modality = typeof MODALITIES[number];

/** Options of {@linkcode evaluateModel}. */
export interface EvaluationOptions {
  /**
   * Std of the Gaussian noise added to one modality's input, in units of
   * that input's std over the test split. Frames are already normalised to
   * about unit std, so for them this is close to the raw value. Log
   * spectrograms are not normalised, which is why the noise is scaled.
   * @default 1
   */
  noiseStd?: number;
  /** Training epochs of each linear probe. @default 20 */
  probeEpochs?: number;
  /** Adam learning rate of the linear probes. @default 0.01 */
  probeLr?: number;
  /** Seed of the noise and of the probes' row order. @default 0 */
  seed?: number;
  /** Samples per forward pass. @default 64 */
  batchSize?: number;
}

/** Result of {@linkcode evaluateModel}; all accuracies lie in [0, 1]. */
export interface ModelEvaluation {
  /** Split the numbers are measured on. */
  split: "test";
  /** Samples in that split. */
  samples: number;
  /** Accuracy of the fused prediction. */
  accuracy: number;
  /** Macro-averaged F1 of the fused prediction. */
  macroF1: number;
  /** Class names; index i is class i. */
  classNames: string[];
  /** Accuracy within each true class; null for a class without samples. */
  perClassAccuracy: (number | null)[];
  /** `confusionMatrix[i][j]`: samples of class i predicted as class j. */
  confusionMatrix: number[][];
  /**
   * Test accuracy of a fresh linear classifier per encoder, trained on the
   * frozen pooled features of the training split.
   */
  linearProbe: Record<Modality, number> & {
    epochs: number;
    lr: number;
    seed: number;
  };
  /** Fused accuracy with that modality's input set to zero. */
  missingModality: Record<Modality, number>;
  /** Fused accuracy with Gaussian noise added to that modality's input. */
  noisyModality: Record<Modality, number> & {
    /** Noise std relative to the input std (the `noiseStd` option). */
    relativeStd: number;
    /** Input std over the test split per modality, the noise's unit. */
    inputStd: Record<Modality, number>;
  };
}

/** Corruption of one modality's inputs during a pass. */
type Corruption =
  | { modality: Modality; kind: "zero" }
  | { modality: Modality; kind: "noise"; std: number; random: Random };

/** Labels, predictions, pooled features and input std of one pass. */
interface PassResult {
  labels: Int32Array;
  predicted: Int32Array;
  features: Record<Modality, FeatureSet>;
  inputStd: Record<Modality, number>;
}

/**
 * Evaluates `model` on the test split of `dataset` in evaluation mode (no
 * augmentation, running batch-norm statistics). Runs six passes: clean
 * test, training-split features, and a zeroed and a noisy pass per
 * modality.
 * @throws {Error} If an option is out of range or the test split is empty.
 */
export async function evaluateModel(
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  options: EvaluationOptions = {},
): Promise<ModelEvaluation> {
  const noiseStd = options.noiseStd ?? 1;
  const probeEpochs = options.probeEpochs ?? 20;
  const probeLr = options.probeLr ?? 0.01;
  const seed = options.seed ?? 0;
  const batchSize = options.batchSize ?? 64;
  if (!(noiseStd >= 0) || !Number.isFinite(noiseStd)) {
    throw new Error(
      `evaluateModel: noiseStd must be a number >= 0, got ${noiseStd}.`,
    );
  }
  if (dataset.splitSizes.test === 0) {
    throw new Error(
      "evaluateModel: the test split is empty; nothing to evaluate.",
    );
  }
  const pass = (split: Split, corruption?: Corruption) =>
    predictSplit(model, dataset, split, { batchSize, seed }, corruption);
  const numClasses = dataset.classNames.length;

  // Fused prediction on clean inputs.
  const clean = await pass("test");
  const matrix = confusionMatrix(clean.labels, clean.predicted, numClasses);

  // Linear probes on frozen features of the training split.
  const train = await pass("train");
  const probe = (modality: Modality) =>
    linearProbeAccuracy(
      train.features[modality],
      clean.features[modality],
      numClasses,
      { epochs: probeEpochs, lr: probeLr, seed: deriveSeed(seed, modality) },
    );

  // One modality missing, then one modality noisy.
  const missing = {} as Record<Modality, number>;
  const noisy = {} as Record<Modality, number>;
  for (const modality of MODALITIES) {
    const zeroed = await pass("test", { modality, kind: "zero" });
    missing[modality] = accuracy(zeroed);
    const random = new Random(deriveSeed(seed, "evaluation-noise", modality));
    const std = noiseStd * clean.inputStd[modality];
    const corrupted = await pass("test", {
      modality,
      kind: "noise",
      std,
      random,
    });
    noisy[modality] = accuracy(corrupted);
  }

  return {
    split: "test",
    samples: clean.labels.length,
    accuracy: accuracy(clean),
    macroF1: macroF1(matrix),
    classNames: [...dataset.classNames],
    perClassAccuracy: perClassAccuracy(matrix).map((value) =>
      Number.isNaN(value) ? null : value
    ),
    confusionMatrix: matrix,
    linearProbe: {
      audio: await probe("audio"),
      visual: await probe("visual"),
      epochs: probeEpochs,
      lr: probeLr,
      seed,
    },
    missingModality: missing,
    noisyModality: {
      ...noisy,
      relativeStd: noiseStd,
      inputStd: clean.inputStd,
    },
  };
}

function accuracy(result: PassResult): number {
  let correct = 0;
  for (let i = 0; i < result.labels.length; i++) {
    if (result.predicted[i] === result.labels[i]) correct++;
  }
  return correct / result.labels.length;
}

/**
 * Runs the model over one split in evaluation mode and collects labels,
 * fused predictions, pooled features and the std of the (uncorrupted)
 * inputs.
 */
async function predictSplit(
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  split: Split,
  batching: { batchSize: number; seed: number },
  corruption?: Corruption,
): Promise<PassResult> {
  const n = dataset.splitSizes[split];
  const dim = model.featureDim;
  const labels = new Int32Array(n);
  const predicted = new Int32Array(n);
  const features = {
    audio: { features: new Float32Array(n * dim), labels, dim },
    visual: { features: new Float32Array(n * dim), labels, dim },
  };
  const moments = { audio: new Moments(), visual: new Moments() };

  const [f, w] = dataset.audioShape;
  const [t, h, wv, c] = dataset.visualShape;
  let offset = 0;
  let batchIndex = 0;
  for (
    const batch of dataset.batches(split, { ...batching, epoch: 0 })
  ) {
    const b = batch.size;
    moments.audio.add(batch.audio);
    moments.visual.add(batch.visual);
    const inputs = corrupt(batch, corruption);
    const outputs = tf.tidy(() => {
      const audio = tf.tensor4d(inputs.audio, [b, f, w, 1]);
      const visual = tf.tensor5d(inputs.visual, [b, t, h, wv, c]);
      const { fused, pooled } = model.predict(audio, visual);
      return [tf.argMax(fused, 1), pooled.audio, pooled.visual];
    });
    // Read asynchronously, because webgpu under Deno has no synchronous
    // reads.
    const [fusedPredicted, audioFeatures, visualFeatures] = await Promise.all(
      outputs.map((tensor) => tensor.data()),
    );
    tf.dispose(outputs);
    predicted.set(fusedPredicted, offset);
    features.audio.features.set(audioFeatures, offset * dim);
    features.visual.features.set(visualFeatures, offset * dim);
    labels.set(batch.labels, offset);
    offset += b;

    // Let timers and signal handlers run between batches.
    if (++batchIndex % 4 === 0) await new Promise((r) => setTimeout(r, 0));
  }

  if (offset !== n) {
    throw new Error(
      `evaluateModel: the ${split} split yielded ${offset} samples but ` +
        `reports ${n}; the dataset's splitSizes and batches disagree.`,
    );
  }
  return {
    labels,
    predicted,
    features,
    inputStd: { audio: moments.audio.std(), visual: moments.visual.std() },
  };
}

/** Returns the batch's inputs with the corruption applied to a copy. */
function corrupt(
  batch: SampleBatch,
  corruption?: Corruption,
): { audio: Float32Array; visual: Float32Array } {
  const inputs = { audio: batch.audio, visual: batch.visual };
  if (corruption === undefined) return inputs;
  const source = inputs[corruption.modality];
  if (corruption.kind === "zero") {
    inputs[corruption.modality] = new Float32Array(source.length);
  } else {
    const noisy = new Float32Array(source.length);
    for (let i = 0; i < source.length; i++) {
      noisy[i] = source[i] + corruption.std * corruption.random.normal();
    }
    inputs[corruption.modality] = noisy;
  }
  return inputs;
}

/** Running mean and std over all values of many arrays. */
class Moments {
  #count = 0;
  #sum = 0;
  #squares = 0;

  add(values: Float32Array): void {
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < values.length; i++) {
      sum += values[i];
      squares += values[i] * values[i];
    }
    this.#count += values.length;
    this.#sum += sum;
    this.#squares += squares;
  }

  std(): number {
    if (this.#count === 0) return NaN;
    const mean = this.#sum / this.#count;
    return Math.sqrt(Math.max(this.#squares / this.#count - mean * mean, 0));
  }
}
