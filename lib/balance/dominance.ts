/**
 * Modality dominance from unimodal logits.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Dominance } from "./strategy.ts";

/** Confidences are clamped to at least this before dividing. */
export const CONFIDENCE_FLOOR = 1e-8;

/**
 * Dominance ratios from true-class confidences:
 * rho^v = mean_i (y_i^v / y_i^a) and rho^a = 1 / rho^v (the inverse of the
 * batch mean, not the mean of inverses).
 * @throws {Error} If the arrays are empty or differ in length.
 */
export function dominanceFromConfidences(
  audio: ArrayLike<number>,
  visual: ArrayLike<number>,
): Dominance {
  if (audio.length === 0 || audio.length !== visual.length) {
    throw new Error(
      `dominanceFromConfidences: expected two equal, non-empty arrays, got ` +
        `lengths ${audio.length} and ${visual.length}.`,
    );
  }
  let sum = 0;
  for (let i = 0; i < audio.length; i++) {
    sum += Math.max(visual[i], CONFIDENCE_FLOOR) /
      Math.max(audio[i], CONFIDENCE_FLOOR);
  }
  const rhoVisual = sum / audio.length;
  return { visual: rhoVisual, audio: 1 / rhoVisual };
}

/**
 * Returns softmax(z)[c_i] for each row, as a plain array.
 * @param logits [B, K].
 * @param labels Length B.
 */
export function trueClassConfidences(
  logits: tf.Tensor2D,
  labels: Int32Array,
): Float32Array {
  return tf.tidy(() => {
    const probs = tf.softmax(logits);
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), logits.shape[1]);
    return tf.sum(tf.mul(probs, oneHot), 1).dataSync() as Float32Array;
  });
}

/** Dominance ratios of a batch from audio and visual logits [B, K]. */
export function dominanceRatios(
  audioLogits: tf.Tensor2D,
  visualLogits: tf.Tensor2D,
  labels: Int32Array,
): Dominance {
  return dominanceFromConfidences(
    trueClassConfidences(audioLogits, labels),
    trueClassConfidences(visualLogits, labels),
  );
}
