/**
 * PMR: prototypical modal rebalance (Fan et al., "PMR: Prototypical Modal
 * Rebalance for Multimodal Learning", CVPR 2023).
 *
 * At the start of each epoch the prototype of class k and modality m is
 * the mean pooled feature of the class's samples in the first 10 % of that
 * epoch's training batches, computed in evaluation mode. A momentum option
 * mixes in the previous prototype. Prototype logits are minus
 * the Euclidean distance of a pooled feature to each prototype. Per step,
 * s^m = sum_i softmax(prototype logits of m)_i[c_i] and rho = s^a / s^v;
 * during the modulation epochs the loss gains alpha CE(prototype logits) of
 * the weaker modality: visual if rho > 1, audio if rho < 1, none at 1.
 * The gradient of that term flows through the pooled features into the
 * encoder. Like the reference scripts, there is no entropy term.
 *
 * Limitations: a class absent from the prototype batches keeps its
 * previous prototype, which is zero before the first one exists.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { SampleBatch } from "../data/types.ts";
import type { AudioVisualModel } from "../models/mod.ts";
import {
  batchTensors,
  checkRange,
  meanCrossEntropy,
  type SampleShapes,
  scaleEpochs,
  trueClassScores,
} from "./_baseline.ts";
import { CONFIDENCE_FLOOR } from "./dominance.ts";
import type {
  BalanceStrategy,
  EpochContext,
  StepContext,
  TrainingForward,
} from "./strategy.ts";

/** Options of {@linkcode Pmr}. */
export interface PmrOptions {
  /** Weight alpha of the prototype cross-entropy, >= 0. @default 2 */
  alpha?: number;
  /**
   * Share of the previous prototype in the new one, in [0, 1); 0 replaces
   * the prototypes every epoch.
   * @default 0
   */
  momentum?: number;
  /**
   * Fraction of each epoch's training batches used for the prototypes, in
   * (0, 1]; at least one batch is used.
   * @default 0.1
   */
  prototypeFraction?: number;
  /** First modulated epoch, counted from 0. @default 0 */
  modulationStart?: number;
  /**
   * Last modulated epoch (inclusive), in epochs of this run. Default: 70
   * scaled by the run's epoch count / 100.
   */
  modulationEnd?: number;
}

/** Class prototypes of both modalities, each [K, D] row-major. */
export interface Prototypes {
  /** Audio prototypes. */
  audio: Float32Array;
  /** Visual prototypes. */
  visual: Float32Array;
  /** Number of classes K. */
  numClasses: number;
  /** Feature size D. */
  dim: number;
}

/** Sums of squared distances below this are clamped before the root. */
export const DISTANCE_FLOOR = 1e-12;

/**
 * Returns prototype logits [B, K]: minus the Euclidean distance of each
 * feature to each prototype, with squared distances clamped at 1e-12 so
 * the gradient stays finite.
 * @param features Pooled features [B, D].
 * @param prototypes Prototypes [K, D].
 */
export function prototypeLogits(
  features: tf.Tensor2D,
  prototypes: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    // [B, 1, D] - [1, K, D] -> [B, K, D] -> [B, K].
    const difference = tf.sub(
      tf.expandDims(features, 1),
      tf.expandDims(prototypes, 0),
    );
    const squared = tf.sum(tf.square(difference), 2);
    return tf.neg(tf.sqrt(tf.maximum(squared, DISTANCE_FLOOR))) as tf.Tensor2D;
  });
}

/**
 * Computes per-class mean pooled features over `batches` in evaluation
 * mode.
 * @returns Sums divided by counts; rows of absent classes are zero, and
 * `counts` gives the samples seen per class.
 */
export function classMeanFeatures(
  model: AudioVisualModel,
  batches: Iterable<SampleBatch>,
  shapes: SampleShapes,
): Prototypes & { counts: Int32Array } {
  const numClasses = model.options.numClasses;
  const dim = model.featureDim;
  const audio = new Float32Array(numClasses * dim);
  const visual = new Float32Array(numClasses * dim);
  const counts = new Int32Array(numClasses);
  for (const batch of batches) {
    const sums = tf.tidy(() => {
      const inputs = batchTensors(batch, shapes);
      const pooled = model.pool(
        model.encode(inputs.audio, inputs.visual, false),
      );
      // [K, B] x [B, D]: per-class sums of the batch.
      const oneHot = tf.transpose(
        tf.oneHot(tf.tensor1d(batch.labels, "int32"), numClasses),
      ).toFloat();
      return tf.stack([
        tf.matMul(oneHot, pooled.audio),
        tf.matMul(oneHot, pooled.visual),
      ]);
    });
    const values = sums.dataSync();
    sums.dispose();
    const size = numClasses * dim;
    for (let i = 0; i < size; i++) {
      audio[i] += values[i];
      visual[i] += values[size + i];
    }
    for (const label of batch.labels) counts[label]++;
  }
  for (let k = 0; k < numClasses; k++) {
    if (counts[k] === 0) continue;
    for (let j = 0; j < dim; j++) {
      audio[k * dim + j] /= counts[k];
      visual[k * dim + j] /= counts[k];
    }
  }
  return { audio, visual, numClasses, dim, counts };
}

/**
 * Mixes new class means into previous prototypes:
 * p = momentum p_old + (1 - momentum) p_new for classes seen now; unseen
 * classes keep p_old (zero without previous prototypes).
 */
export function updatePrototypes(
  previous: Prototypes | undefined,
  means: Prototypes & { counts: Int32Array },
  momentum: number,
): Prototypes {
  const { numClasses, dim } = means;
  const mix = (old: Float32Array | undefined, now: Float32Array) => {
    const out = old === undefined ? new Float32Array(now.length) : old.slice();
    for (let k = 0; k < numClasses; k++) {
      if (means.counts[k] === 0) continue;
      for (let j = k * dim; j < (k + 1) * dim; j++) {
        out[j] = old === undefined
          ? now[j]
          : momentum * old[j] + (1 - momentum) * now[j];
      }
    }
    return out;
  };
  return {
    audio: mix(previous?.audio, means.audio),
    visual: mix(previous?.visual, means.visual),
    numClasses,
    dim,
  };
}

/** The PMR strategy. */
export class Pmr implements BalanceStrategy {
  /** Method name. */
  readonly name = "pmr";
  /** Prototypes and scores are read with `dataSync()`. */
  readonly synchronousReads = true;
  readonly #alpha: number;
  readonly #momentum: number;
  readonly #prototypeFraction: number;
  readonly #modulationStart: number;
  readonly #modulationEnd?: number;
  #prototypes?: Prototypes;
  #stats: Record<string, number> = {};

  /**
   * Creates the strategy.
   * @throws {Error} If an option lies outside its range.
   */
  constructor(options: PmrOptions = {}) {
    this.#alpha = checkRange("PMR", "alpha", options.alpha ?? 2, {
      min: 0,
      maxOpen: true,
    });
    this.#momentum = checkRange("PMR", "momentum", options.momentum ?? 0, {
      min: 0,
      max: 1,
      maxOpen: true,
    });
    this.#prototypeFraction = checkRange(
      "PMR",
      "prototype fraction",
      options.prototypeFraction ?? 0.1,
      { min: 0, max: 1, minOpen: true },
    );
    this.#modulationStart = checkRange(
      "PMR",
      "modulation start",
      options.modulationStart ?? 0,
      { min: 0 },
    );
    if (options.modulationEnd !== undefined) {
      this.#modulationEnd = checkRange(
        "PMR",
        "modulation end",
        options.modulationEnd,
        { min: 0 },
      );
    }
  }

  /** Returns the resolved options. */
  config(): Record<string, unknown> {
    return {
      method: this.name,
      alpha: this.#alpha,
      momentum: this.#momentum,
      prototypeFraction: this.#prototypeFraction,
      modulationStart: this.#modulationStart,
      modulationEnd: this.#modulationEnd ?? "70 x epochs / 100",
      unimodal: "prototype",
    };
  }

  /** The current prototypes, or undefined before the first epoch. */
  get prototypes(): Prototypes | undefined {
    return this.#prototypes;
  }

  /**
   * Recomputes the prototypes from the first batches of this epoch's
   * training order, in evaluation mode.
   */
  onEpochStart(context: EpochContext): void {
    const { dataset, batchSize } = context;
    const total = Math.max(1, Math.floor(dataset.splitSizes.train / batchSize));
    const count = Math.max(1, Math.ceil(this.#prototypeFraction * total));
    const means = classMeanFeatures(
      context.model,
      firstBatches(
        dataset.batches("train", {
          batchSize,
          seed: context.seed,
          epoch: context.epoch,
          training: true,
          dropLast: true,
        }),
        count,
      ),
      { audio: dataset.audioShape, visual: dataset.visualShape },
    );
    this.#prototypes = updatePrototypes(
      this.#prototypes,
      means,
      this.#momentum,
    );
  }

  /**
   * Returns alpha times the prototype cross-entropy of the weaker modality
   * during the modulation epochs, else undefined.
   */
  extraLoss(
    forward: TrainingForward,
    _fused: tf.Tensor2D,
    context: StepContext,
  ): tf.Scalar | undefined {
    const prototypes = this.#prototypes;
    this.#stats = {};
    if (prototypes === undefined) return undefined;
    const { numClasses, dim } = prototypes;
    const audioLogits = prototypeLogits(
      forward.pooled.audio,
      tf.tensor2d(prototypes.audio, [numClasses, dim]),
    );
    const visualLogits = prototypeLogits(
      forward.pooled.visual,
      tf.tensor2d(prototypes.visual, [numClasses, dim]),
    );
    const scores = trueClassScores(
      { audio: audioLogits, visual: visualLogits },
      context.labels,
    );
    const rho = Math.max(scores.audio, CONFIDENCE_FLOOR) /
      Math.max(scores.visual, CONFIDENCE_FLOOR);
    const end = this.#modulationEnd ?? scaleEpochs(70, context.epochs);
    const modulating = context.epoch >= this.#modulationStart &&
      context.epoch <= end;
    const weaker = !modulating || rho === 1
      ? undefined
      : rho > 1
      ? "visual"
      : "audio";
    this.#stats = {
      proto_ratio_audio: rho,
      proto_weight_audio: weaker === "audio" ? this.#alpha : 0,
      proto_weight_visual: weaker === "visual" ? this.#alpha : 0,
    };
    if (weaker === undefined) return undefined;
    const logits = weaker === "audio" ? audioLogits : visualLogits;
    const labels = tf.tensor1d(context.labels, "int32");
    return tf.mul(meanCrossEntropy(logits, labels), this.#alpha) as tf.Scalar;
  }

  /** Prototype dominance rho = s^a / s^v and the weights applied. */
  stepStats(): Record<string, number> {
    return this.#stats;
  }

  /** Prototypes as plain arrays, for checkpoints. */
  getState(): unknown {
    const p = this.#prototypes;
    if (p === undefined) return null;
    return {
      audio: [...p.audio],
      visual: [...p.visual],
      numClasses: p.numClasses,
      dim: p.dim,
    };
  }

  /** Restores what `getState` returned. */
  setState(state: unknown): void {
    const saved = state as {
      audio: number[];
      visual: number[];
      numClasses: number;
      dim: number;
    } | null;
    if (saved === null || saved === undefined) {
      this.#prototypes = undefined;
      return;
    }
    this.#prototypes = {
      audio: Float32Array.from(saved.audio),
      visual: Float32Array.from(saved.visual),
      numClasses: saved.numClasses,
      dim: saved.dim,
    };
  }
}

function* firstBatches(
  batches: Iterable<SampleBatch>,
  count: number,
): Iterable<SampleBatch> {
  if (count <= 0) return;
  let taken = 0;
  for (const batch of batches) {
    yield batch;
    if (++taken >= count) return;
  }
}
