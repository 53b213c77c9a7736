/**
 * Gradient-weighted class activation maps (Selvaraju et al. 2017) on
 * feature maps of any spatial rank.
 *
 * The base computes, for each map A [B, ...positions, C], the gradient of
 * the summed target-class scores with respect to A, and hands both to a
 * channel-weighting rule; GradCAM's rule averages the gradient over
 * positions. Other variants (GradCAM++, HiResCAM) only change that rule.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/**
 * Class score a CAM explains: the true label of each sample, or the
 * class the model predicts for it.
 */
export type CamTarget = "label" | "predicted";

/**
 * Channel weights from per-position gradients.
 * Takes gradients and maps as [B, P, C] and returns weights [B, C].
 */
export type ChannelWeighting = (
  gradients: tf.Tensor3D,
  maps: tf.Tensor3D,
) => tf.Tensor2D;

/** GradCAM's weights: alpha_k = mean over positions of dScore / dA_k. */
export const gradCamWeights: ChannelWeighting = (gradients) =>
  tf.mean(gradients, 1) as tf.Tensor2D;

/**
 * Picks target classes for each sample.
 * @param logits Scores [B, K] the CAM explains.
 * @param labels True labels, length B.
 * @returns Class indices, length B.
 */
export function camTargets(
  logits: tf.Tensor2D,
  labels: Int32Array,
  target: CamTarget,
): Int32Array {
  if (target === "label") return labels;
  return tf.tidy(() => tf.argMax(logits, 1).dataSync() as Int32Array);
}

/**
 * Computes one class activation map per input map.
 *
 * Gradients are taken with respect to the maps themselves. Inside a
 * training tape, the backward pass therefore runs through `score` (the
 * fusion head and pooling) and never through the encoders.
 *
 * @param score Function from the maps to class logits [B, K].
 * @param maps Feature maps, each [B, ...positions, C].
 * @param targets Class index per sample, length B.
 * @param weighting Channel-weighting rule. @default gradCamWeights
 * @returns One CAM per map, each [B, ...positions]:
 * ReLU(sum_k alpha_k A_k).
 * @throws {Error} If a map's batch size differs from `targets.length`.
 */
export function classActivationMaps(
  score: (maps: tf.Tensor[]) => tf.Tensor2D,
  maps: tf.Tensor[],
  targets: Int32Array,
  weighting: ChannelWeighting = gradCamWeights,
): tf.Tensor[] {
  for (const map of maps) {
    if (map.shape[0] !== targets.length) {
      throw new Error(
        `classActivationMaps: map batch ${map.shape[0]} differs from ` +
          `${targets.length} targets.`,
      );
    }
  }
  return tf.tidy(() => {
    const targetTensor = tf.tensor1d(targets, "int32");

    // Gradient of sum_i logits[i, c_i] with respect to each map.
    const gradients = tf.grads((...inputs: tf.Tensor[]) => {
      const logits = score(inputs);
      const oneHot = tf.oneHot(targetTensor, logits.shape[1]);
      return tf.sum(tf.mul(logits, oneHot));
    })(maps);

    return maps.map((map, m) => {
      const batch = map.shape[0];
      const channels = map.shape[map.rank - 1];
      const spatial = map.shape.slice(1, -1);
      // [B, ...positions, C] -> [B, P, C].
      const flatMap = tf.reshape(map, [batch, -1, channels]) as tf.Tensor3D;
      const flatGrad = tf.reshape(gradients[m], [
        batch,
        -1,
        channels,
      ]) as tf.Tensor3D;
      const alpha = weighting(flatGrad, flatMap);
      const cam = tf.relu(
        tf.sum(tf.mul(flatMap, tf.expandDims(alpha, 1)), 2),
      );
      return tf.reshape(cam, [batch, ...spatial]);
    });
  });
}
