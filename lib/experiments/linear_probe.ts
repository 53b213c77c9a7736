/**
 * Linear probe: a fresh softmax-regression classifier trained on frozen
 * features, the usual measure of how much class information an encoder's
 * features hold on their own.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";
import { createOptimizer } from "../train/optimizers.ts";

/** Features of one split, row-major [N, dim], with their labels. */
export interface FeatureSet {
  /** Feature values, N x dim. */
  features: Float32Array;
  /** Class of each row, length N. */
  labels: Int32Array;
  /** Feature size per row. */
  dim: number;
}

/** Options of {@linkcode linearProbeAccuracy}. */
export interface LinearProbeOptions {
  /** Passes over the training features. @default 20 */
  epochs?: number;
  /** Adam learning rate. @default 0.01 */
  lr?: number;
  /** Rows per step. @default 64 */
  batchSize?: number;
  /** Seed of the row order. @default 0 */
  seed?: number;
}

/**
 * Trains a linear classifier on `train` and returns its accuracy on `test`.
 * Features are standardised per dimension with the training mean and std,
 * weights start at zero and rows are shuffled with `seed`, so equal inputs
 * give equal results on one backend.
 * @returns Accuracy on `test` in [0, 1]; NaN when `test` is empty. The
 * predictions are read asynchronously, so every backend can run it.
 * @throws {Error} If the sets disagree in feature size, `train` is empty
 * or an option is out of range.
 */
export async function linearProbeAccuracy(
  train: FeatureSet,
  test: FeatureSet,
  numClasses: number,
  options: LinearProbeOptions = {},
): Promise<number> {
  const epochs = options.epochs ?? 20;
  const lr = options.lr ?? 0.01;
  const batchSize = options.batchSize ?? 64;
  const seed = options.seed ?? 0;
  checkOptions(train, test, epochs, lr, batchSize);
  const n = train.labels.length;
  if (test.labels.length === 0) return NaN;

  const { mean, std } = columnMoments(train);
  const weights = tf.tidy(() => tf.variable(tf.zeros([train.dim, numClasses])));
  const bias = tf.tidy(() => tf.variable(tf.zeros([numClasses])));
  const variables = new Map([["weights", weights], ["bias", bias]]);
  const optimizer = createOptimizer("adam", { weightDecay: 0 });
  const x = standardised(train, mean, std);
  const y = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(train.labels, "int32"), numClasses)
  );
  try {
    const random = new Random(deriveSeed(seed, "linear-probe"));
    const order = Array.from({ length: n }, (_, i) => i);
    for (let epoch = 0; epoch < epochs; epoch++) {
      random.shuffle(order);
      for (let start = 0; start < n; start += batchSize) {
        const rows = order.slice(start, start + batchSize);
        tf.tidy(() => {
          const index = tf.tensor1d(rows, "int32");
          const xb = tf.gather(x, index);
          const yb = tf.gather(y, index);
          const { grads } = tf.variableGrads(() => {
            const logits = tf.add(tf.matMul(xb, weights), bias);
            return tf.losses.softmaxCrossEntropy(yb, logits) as tf.Scalar;
          }, [weights, bias]);
          optimizer.step(variables, {
            weights: grads[weights.name],
            bias: grads[bias.name],
          }, lr);
        });
      }
    }
    const predictedTensor = tf.tidy(() => {
      const logits = tf.add(
        tf.matMul(standardised(test, mean, std), weights),
        bias,
      );
      return tf.argMax(logits, 1);
    });
    const predicted = await predictedTensor.data();
    predictedTensor.dispose();
    let correct = 0;
    for (let i = 0; i < predicted.length; i++) {
      if (predicted[i] === test.labels[i]) correct++;
    }
    return correct / predicted.length;
  } finally {
    tf.dispose([weights, bias, x, y]);
    optimizer.dispose();
  }
}

function checkOptions(
  train: FeatureSet,
  test: FeatureSet,
  epochs: number,
  lr: number,
  batchSize: number,
): void {
  if (train.dim !== test.dim) {
    throw new Error(
      `linearProbeAccuracy: training features have ${train.dim} dimensions ` +
        `but test features ${test.dim}; pass features of one encoder.`,
    );
  }
  if (train.labels.length === 0) {
    throw new Error(
      "linearProbeAccuracy: the training set is empty; the probe needs at " +
        "least one training row.",
    );
  }
  if (!Number.isInteger(epochs) || epochs < 1) {
    throw new Error(
      `linearProbeAccuracy: epochs must be an integer >= 1, got ${epochs}.`,
    );
  }
  if (!(lr > 0) || !Number.isFinite(lr)) {
    throw new Error(`linearProbeAccuracy: lr must be > 0, got ${lr}.`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(
      `linearProbeAccuracy: batchSize must be an integer >= 1, got ` +
        `${batchSize}.`,
    );
  }
}

/** Mean and std of each feature column; a constant column gets std 1. */
function columnMoments(
  set: FeatureSet,
): { mean: Float32Array; std: Float32Array } {
  const { features, dim } = set;
  const n = features.length / dim;
  const mean = new Float64Array(dim);
  const square = new Float64Array(dim);
  for (let row = 0; row < n; row++) {
    for (let j = 0; j < dim; j++) {
      const value = features[row * dim + j];
      mean[j] += value;
      square[j] += value * value;
    }
  }
  const std = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    mean[j] /= n;
    const variance = Math.max(square[j] / n - mean[j] * mean[j], 0);
    std[j] = variance > 1e-12 ? Math.sqrt(variance) : 1;
  }
  return { mean: Float32Array.from(mean), std };
}

function standardised(
  set: FeatureSet,
  mean: Float32Array,
  std: Float32Array,
): tf.Tensor2D {
  return tf.tidy(() => {
    const n = set.labels.length;
    const x = tf.tensor2d(set.features, [n, set.dim]);
    return tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std));
  });
}
