/**
 * The ReLU gradient as one kernel: dx = dy * step(x). tfjs's
 * own gradient composes it of Step, Cast and Multiply, three full passes
 * and two temporary tensors. Only the accelerated wasm path registers the
 * kernel; elsewhere the gradient stays tfjs's.
 *
 * The JavaScript kernel computes tfjs's formula, dy * step(x), bit for bit,
 * NaN and infinities included. oneDNN's kernel differs where x is NaN: it
 * returns dy there, where tfjs returns NaN. A NaN activation still reaches
 * the loss through the forward pass, where the trainer stops on it.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Kernel name: inputs dy and x (the ReLU's input), output dx. */
export const RELU_GRAD = "CamdropReluGrad";

/**
 * Returns the ReLU gradient config that calls {@linkcode RELU_GRAD} where
 * the active backend has it and `core`'s function elsewhere.
 */
export function reluGradConfig(core: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const fused = tf.getKernel(RELU_GRAD, tf.getBackend()) != null &&
        x.dtype === "float32" && (dy as tf.Tensor).dtype === "float32";
      if (!fused) return core.gradFunc(dy, saved, attrs);
      return {
        x: () =>
          tf.engine().runKernel(RELU_GRAD, {
            dy: dy as tf.Tensor,
            x,
          }) as tf.Tensor,
      };
    },
  };
}

/**
 * Writes dx = dy * step(x) for `size` floats at the float indices `dy`,
 * `x` and `dx` of `floats`, where step(x) is 1 for x > 0, NaN for NaN and
 * 0 otherwise, as in tfjs.
 */
export function reluGradInto(
  floats: Float32Array,
  dy: number,
  x: number,
  dx: number,
  size: number,
): void {
  for (let i = 0; i < size; i++) {
    const value = floats[x + i];
    // NaN fails both comparisons and keeps step = NaN.
    let step = NaN;
    if (value > 0) step = 1;
    else if (value <= 0) step = 0;
    floats[dx + i] = floats[dy + i] * step;
  }
}
