/**
 * A FusedBatchNorm gradient built from broadcasting ops. It returns the
 * same values as the gradient in tfjs-core 4.22
 * (`gradients/FusedBatchNorm_grad.js`). That one expands the per-channel
 * 1/sqrt(variance + epsilon) to the full input shape with `Tile`, which is
 * slow on the wasm backend, and broadcasting makes the copy unnecessary.
 *
 * As in tfjs-core, mean and variance are treated as inputs in their own
 * right: the x gradient does not include the paths through batch
 * statistics. When a model computes them from x (tf.moments), autodiff
 * adds those paths through the ops that produced them.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Sums `value` over the axes along which `shape` was broadcast to it. */
function reduceTo(value: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, value.shape);
  const reduced = axes.length > 0 ? tf.sum(value, axes) : value;
  return tf.reshape(reduced, shape);
}

/**
 * Computes the FusedBatchNorm gradients for x, mean, variance, scale and
 * offset, in the form tfjs's `GradFunc` expects.
 *
 * With r = 1 / sqrt(variance + epsilon), g = scale (1 when absent):
 * dx = dy * r * g, dmean = -sum(dy * g * r),
 * dvariance = -0.5 * sum(dy * g * (x - mean) * r^3),
 * dscale = sum(dy * (x - mean) * r), doffset = sum(dy), each sum taken
 * over the axes that the parameter was broadcast along.
 *
 * @param dy Gradient of the output, the shape of x.
 * @param saved The saved inputs [x, mean, variance, scale], where scale
 *   may be absent.
 * @param varianceEpsilon The epsilon added to the variance.
 * @returns One lazily evaluated gradient per input name.
 */
export function batchNormGrads(
  dy: tf.Tensor,
  saved: tf.Tensor[],
  varianceEpsilon: number,
): Record<string, () => tf.Tensor> {
  const [x, mean, variance, scale] = saved;
  const scaleValue = scale ?? tf.scalar(1);
  const rsqrtVariance = tf.rsqrt(tf.add(variance, varianceEpsilon));
  const xMinusMean = tf.sub(x, mean);
  const dyTimesScale = tf.mul(dy, scaleValue);

  return {
    x: () => tf.reshape(tf.mul(dyTimesScale, rsqrtVariance), x.shape),
    mean: () => {
      const perElement = tf.neg(tf.mul(dyTimesScale, rsqrtVariance));
      return reduceTo(perElement, mean.shape);
    },
    variance: () => {
      const rCubed = tf.mul(
        tf.mul(rsqrtVariance, rsqrtVariance),
        rsqrtVariance,
      );
      const perElement = tf.mul(
        tf.mul(dyTimesScale, xMinusMean),
        tf.mul(rCubed, -0.5),
      );
      return reduceTo(perElement, variance.shape);
    },
    scale: () => {
      const normalized = tf.mul(xMinusMean, rsqrtVariance);
      return reduceTo(tf.mul(dy, normalized), (scale ?? mean).shape);
    },
    // Offset is not saved, so like tfjs-core assume it has mean's shape.
    offset: () => reduceTo(dy, mean.shape),
  };
}
