/**
 * Helpers shared by the baseline balancing methods (OGM-GE, OPM,
 * Gradient-Blending, PMR): option checks, epoch scaling, unimodal logits
 * and true-class scores.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { ModalityLogits } from "../models/mod.ts";
import type { TrainingForward } from "./strategy.ts";
import type { AudioVisualModel } from "../models/model.ts";

/**
 * Checks that `value` lies in a range and returns it.
 * @param method Method name for the message, such as "OGM-GE".
 * @param name Option name for the message.
 * @param range Bounds: `minOpen` and `maxOpen` exclude a bound, and
 * `integer` requires a whole number.
 * @throws {Error} If the value is NaN, not a whole number where one is
 * required, or outside the range.
 */
export function checkRange(
  method: string,
  name: string,
  value: number,
  range: {
    min?: number;
    max?: number;
    minOpen?: boolean;
    maxOpen?: boolean;
    integer?: boolean;
  },
): number {
  const { min = -Infinity, max = Infinity } = range;
  const aboveMin = range.minOpen ? value > min : value >= min;
  const belowMax = range.maxOpen ? value < max : value <= max;
  const whole = !range.integer || Number.isInteger(value);
  if (
    typeof value !== "number" || Number.isNaN(value) || !aboveMin ||
    !belowMax || !whole
  ) {
    const low = min === -Infinity
      ? "(-inf"
      : `${range.minOpen ? "(" : "["}${min}`;
    const high = max === Infinity
      ? "inf)"
      : `${max}${range.maxOpen ? ")" : "]"}`;
    const kind = range.integer ? "an integer" : "a number";
    throw new Error(
      `${method}: ${name} must be ${kind} in ${low}, ${high}, got ${value}.`,
    );
  }
  return value;
}

/**
 * Scales an epoch count set for a 100-epoch run, the length the baselines'
 * published settings use, to a run of `epochs` epochs.
 */
export function scaleEpochs(paperEpochs: number, epochs: number): number {
  return paperEpochs * epochs / 100;
}

/** Source of a baseline's unimodal logits. */
export type BaselineUnimodalKind = "fusion-split" | "probe";

/**
 * Returns the unimodal logits OGM-GE and OPM use: fusion-split logits on
 * the pooled features when the fusion head has them (concat and sum), the
 * probe-head logits of `forward.unimodal` otherwise (FiLM, gated and the
 * unimodal heads, which allow only probe logits).
 */
export function baselineUnimodalLogits(
  model: AudioVisualModel,
  forward: TrainingForward,
): { kind: BaselineUnimodalKind; logits: ModalityLogits } {
  if (!model.fusion.hasSplitLogits) {
    return { kind: "probe", logits: forward.unimodal };
  }
  const logits = model.options.unimodal === "fusion-split"
    ? forward.unimodal
    : model.fusion.splitLogits(forward.pooled.audio, forward.pooled.visual);
  return { kind: "fusion-split", logits };
}

/** Sums over the batch of the true-class softmax probabilities. */
export interface TrueClassScores {
  /** s^a = sum_i softmax(z_i^a)[c_i]. */
  audio: number;
  /** s^v = sum_i softmax(z_i^v)[c_i]. */
  visual: number;
}

/**
 * Computes s^m = sum over the batch of softmax(z^m)[c] for both
 * modalities. The result is plain numbers: no gradient flows through it.
 * @param logits Audio and visual logits, each [B, K].
 * @param labels True labels, length B.
 */
export function trueClassScores(
  logits: ModalityLogits,
  labels: Int32Array,
): TrueClassScores {
  const sums = tf.tidy(() => {
    const oneHot = tf.oneHot(
      tf.tensor1d(labels, "int32"),
      logits.audio.shape[1],
    );
    return tf.stack([
      tf.sum(tf.mul(tf.softmax(logits.audio), oneHot)),
      tf.sum(tf.mul(tf.softmax(logits.visual), oneHot)),
    ]);
  });
  const values = sums.dataSync();
  sums.dispose();
  return { audio: values[0], visual: values[1] };
}

/**
 * Computes the true-class scores of the unimodal logits that
 * {@linkcode baselineUnimodalLogits} picks, disposing those logits.
 */
export function baselineScores(
  model: AudioVisualModel,
  forward: TrainingForward,
  labels: Int32Array,
): { kind: BaselineUnimodalKind; scores: TrueClassScores } {
  const unimodal = baselineUnimodalLogits(model, forward);
  const scores = trueClassScores(unimodal.logits, labels);
  if (unimodal.logits !== forward.unimodal) {
    tf.dispose([unimodal.logits.audio, unimodal.logits.visual]);
  }
  return { kind: unimodal.kind, scores };
}

/**
 * Mean softmax cross-entropy of logits [B, K] against int labels [B].
 * The trainer has its own copy. This one keeps the balance folder free of
 * imports from the trainer, which imports the balance folder.
 */
export function meanCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, logits.shape[1]);
    const picked = tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  });
}

/** Per-sample sizes of one batch of a dataset, for building tensors. */
export interface SampleShapes {
  /** Spectrogram size [F, W]. */
  audio: readonly [number, number];
  /** Frame stack size [T, H, W, C]. */
  visual: readonly [number, number, number, number];
}

/**
 * Makes input tensors of a batch: audio [B, F, W, 1], visual
 * [B, T, H, W, C].
 */
export function batchTensors(
  batch: { size: number; audio: Float32Array; visual: Float32Array },
  shapes: SampleShapes,
): { audio: tf.Tensor4D; visual: tf.Tensor5D } {
  const [f, w] = shapes.audio;
  const [t, h, wv, c] = shapes.visual;
  return {
    audio: tf.tensor4d(batch.audio, [batch.size, f, w, 1]),
    visual: tf.tensor5d(batch.visual, [batch.size, t, h, wv, c]),
  };
}
