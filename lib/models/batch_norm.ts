/**
 * Training-mode batch normalisation as one differentiable op.
 *
 * Composing `tf.moments` with `tf.batchNorm` gives correct gradients but
 * runs about twenty full-size elementwise passes forward and backward,
 * which dominate the step time of small models on the wasm backend. This
 * op uses the closed-form gradient (Ioffe and Szegedy 2015):
 *
 *   x_hat = (x - mean) / sqrt(var + eps),  y = gamma x_hat + beta,
 *   dbeta = sum(dy),  dgamma = sum(dy x_hat),
 *   dx = gamma / (N sqrt(var + eps)) (N dy - dbeta - x_hat dgamma),
 *
 * with sums and N over the batch and spatial axes.
 *
 * Where the active backend has the fused kernels of the accelerated wasm
 * path (`installBlasKernels`), each direction is one kernel: oneDNN's
 * batch-norm primitive, or a few JavaScript passes over the data. The
 * fused forward pass keeps x and the batch statistics, and the backward
 * kernel recomputes x_hat from them. Elsewhere the op is composed of tfjs
 * ops, which keep x_hat.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
} from "../backend/_batch_norm_fused.ts";

/** Batch statistics of one call, for the running averages. */
export interface BatchMoments {
  /** Per-channel mean. */
  mean: tf.Tensor1D;
  /** Per-channel biased variance. */
  variance: tf.Tensor1D;
}

/** The forward pass's outputs; xHat and invStd are kept for the gradient. */
interface ForwardParts {
  y: tf.Tensor4D;
  xHat: tf.Tensor4D;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  invStd: tf.Tensor1D;
}

/** Computes the forward pass from tfjs ops. */
function composedForward(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): ForwardParts {
  const mean = tf.mean(x, [0, 1, 2]) as tf.Tensor1D;
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), [0, 1, 2]) as tf.Tensor1D;
  const invStd = tf.rsqrt(tf.add(variance, epsilon)) as tf.Tensor1D;
  const xHat = tf.mul(centred, invStd) as tf.Tensor4D;
  const y = tf.add(tf.mul(xHat, gamma), beta) as tf.Tensor4D;
  return { y, xHat, mean, variance, invStd };
}

/** Computes [dx, dGamma, dBeta] from tfjs ops. */
function composedBackward(
  dy: tf.Tensor4D,
  xHat: tf.Tensor,
  invStd: tf.Tensor,
  gamma: tf.Tensor,
): tf.Tensor[] {
  const count = dy.shape[0] * dy.shape[1] * dy.shape[2];
  const dBeta = tf.sum(dy, [0, 1, 2]);
  const dGamma = tf.sum(tf.mul(dy, xHat), [0, 1, 2]);
  const inner = tf.sub(
    tf.sub(tf.mul(dy, count), dBeta),
    tf.mul(xHat, dGamma),
  );
  const dx = tf.mul(inner, tf.div(tf.mul(gamma, invStd), count));
  return [dx, dGamma, dBeta];
}

/**
 * Runs the op with the fused kernels: the forward pass keeps x and the
 * batch statistics, from which the backward kernel recomputes xHat.
 */
function fusedOp(
  epsilon: number,
  onMoments?: (moments: BatchMoments) => void,
) {
  const attrs = { epsilon } as unknown as tf.NamedAttrMap;
  // deno-lint-ignore no-explicit-any
  return (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, save: any) => {
    const [y, mean, variance] = tf.engine().runKernel(
      BATCH_NORM_TRAIN,
      { x, gamma, beta },
      attrs,
    ) as tf.Tensor[];
    // Saving clones the handles, so it comes before onMoments, whose
    // owner may dispose the statistics at once.
    save([x, gamma, mean, variance]);
    if (onMoments) {
      onMoments({
        mean: tf.keep(mean) as tf.Tensor1D,
        variance: tf.keep(variance) as tf.Tensor1D,
      });
    }
    return {
      value: y as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [input, scale, batchMean, batchVariance] = saved;
        return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, {
          dy,
          x: input,
          gamma: scale,
          mean: batchMean,
          variance: batchVariance,
        }, attrs) as tf.Tensor[];
      },
    };
  };
}

/** Runs the op composed of tfjs ops, keeping xHat for the gradient. */
function composedOp(
  epsilon: number,
  onMoments?: (moments: BatchMoments) => void,
) {
  // deno-lint-ignore no-explicit-any
  return (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, save: any) => {
    const parts = composedForward(x, gamma, beta, epsilon);
    if (onMoments) {
      onMoments({
        mean: tf.keep(parts.mean),
        variance: tf.keep(parts.variance),
      });
    }
    save([parts.xHat, parts.invStd, gamma]);
    return {
      value: parts.y,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xHat, invStd, scale] = saved;
        return composedBackward(dy, xHat, invStd, scale);
      },
    };
  };
}

/**
 * Normalises x [N, H, W, C] with its own batch statistics and applies
 * gamma and beta [C]. The statistics are kept (`tf.keep`) and handed to
 * `onMoments`, which owns them.
 */
export function batchNormTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
  onMoments?: (moments: BatchMoments) => void,
): tf.Tensor4D {
  const fused = tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) != null;
  const body = fused
    ? fusedOp(epsilon, onMoments)
    : composedOp(epsilon, onMoments);
  const op = tf.customGrad(body as never) as (
    a: tf.Tensor4D,
    b: tf.Tensor1D,
    c: tf.Tensor1D,
  ) => tf.Tensor4D;
  return op(x, gamma, beta);
}
