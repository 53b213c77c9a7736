/**
 * Training-mode batch normalisation and its gradient in JavaScript: three
 * passes forward and two backward over float32 NHWC data in one memory (the wasm heap), addressed by float
 * indices. The data is seen as `pixels` rows of `channels` values, with
 * pixels = N * H * W. Per-channel sums are accumulated in float64.
 *
 * Forward: mean = sum(x) / pixels, variance = sum((x - mean)^2) / pixels
 * (biased), invStd = 1 / sqrt(variance + epsilon), xHat = (x - mean) *
 * invStd and y = gamma * xHat + beta.
 *
 * Backward, with the batch statistics as functions of x and xHat
 * recomputed from x, mean and variance: dBeta = sum(dy),
 * dGamma = sum(dy * xHat) and dx = gamma * invStd / pixels * (pixels * dy -
 * dBeta - xHat * dGamma).
 *
 * @module
 */

/**
 * Kernel name of the forward pass: inputs x, gamma and beta, attribute
 * epsilon, outputs [y, mean, variance].
 */
export const BATCH_NORM_TRAIN = "CamdropBatchNormTrain";

/**
 * Kernel name of the backward pass: inputs dy, x, gamma, mean and
 * variance (the forward pass's), attribute epsilon, outputs [dx, dGamma,
 * dBeta].
 */
export const BATCH_NORM_TRAIN_GRAD = "CamdropBatchNormTrainGrad";

/** Float indices of the forward pass's tensors. */
export interface BatchNormForwardAddresses {
  /** Input [pixels, channels]. */
  x: number;
  /** Scale [channels]. */
  gamma: number;
  /** Offset [channels]. */
  beta: number;
  /** Output [pixels, channels]. */
  y: number;
  /** Batch mean [channels]. */
  mean: number;
  /** Biased batch variance [channels]. */
  variance: number;
}

/** Float indices of the backward pass's tensors. */
export interface BatchNormBackwardAddresses {
  /** Output gradient [pixels, channels]. */
  dy: number;
  /** Input of the forward pass [pixels, channels]. */
  x: number;
  /** Scale [channels]. */
  gamma: number;
  /** Batch mean of the forward pass [channels]. */
  mean: number;
  /** Biased batch variance of the forward pass [channels]. */
  variance: number;
  /** Input gradient [pixels, channels]. */
  dx: number;
  /** Scale gradient [channels]. */
  dGamma: number;
  /** Offset gradient [channels]. */
  dBeta: number;
}

let sums = new Float64Array(0);
let squares = new Float64Array(0);

function accumulators(channels: number): void {
  if (sums.length < channels) {
    sums = new Float64Array(channels);
    squares = new Float64Array(channels);
  }
  sums.fill(0, 0, channels);
  squares.fill(0, 0, channels);
}

/** Runs the forward pass; every output address is overwritten. */
export function batchNormForward(
  floats: Float32Array,
  at: BatchNormForwardAddresses,
  pixels: number,
  channels: number,
  epsilon: number,
): void {
  const size = pixels * channels;
  // An empty batch gets mean and variance 0, which is what tf.mean of an
  // empty tensor returns on the cpu backend, instead of 0 / 0 = NaN.
  const count = Math.max(pixels, 1);

  // Mean, kept in sums.
  accumulators(channels);
  for (let row = 0; row < size; row += channels) {
    const start = at.x + row;
    for (let c = 0; c < channels; c++) sums[c] += floats[start + c];
  }
  for (let c = 0; c < channels; c++) {
    floats[at.mean + c] = sums[c] / count;
    sums[c] /= count;
  }

  // The variance takes a second pass over x - mean, which loses less
  // precision than sum(x^2) - pixels * mean^2.
  for (let row = 0; row < size; row += channels) {
    const start = at.x + row;
    for (let c = 0; c < channels; c++) {
      const centred = floats[start + c] - sums[c];
      squares[c] += centred * centred;
    }
  }
  for (let c = 0; c < channels; c++) {
    const variance = squares[c] / count;
    floats[at.variance + c] = variance;
    squares[c] = 1 / Math.sqrt(variance + epsilon);
  }

  // The output. From here on, squares contains 1 / sqrt(var + epsilon).
  for (let row = 0; row < size; row += channels) {
    const source = at.x + row;
    for (let c = 0; c < channels; c++) {
      const normalised = (floats[source + c] - sums[c]) * squares[c];
      floats[at.y + row + c] = floats[at.gamma + c] * normalised +
        floats[at.beta + c];
    }
  }
}

/** Runs the backward pass; every output address is overwritten. */
export function batchNormBackward(
  floats: Float32Array,
  at: BatchNormBackwardAddresses,
  pixels: number,
  channels: number,
  epsilon: number,
): void {
  const size = pixels * channels;
  // xHat = (x - mean) * invStd is recomputed here instead of being kept
  // from the forward pass.
  const mean = new Float64Array(channels);
  const invStd = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    mean[c] = floats[at.mean + c];
    invStd[c] = 1 / Math.sqrt(floats[at.variance + c] + epsilon);
  }
  accumulators(channels);
  for (let row = 0; row < size; row += channels) {
    const dy = at.dy + row;
    const x = at.x + row;
    for (let c = 0; c < channels; c++) {
      const g = floats[dy + c];
      sums[c] += g;
      squares[c] += g * (floats[x + c] - mean[c]) * invStd[c];
    }
  }
  for (let c = 0; c < channels; c++) {
    floats[at.dBeta + c] = sums[c];
    floats[at.dGamma + c] = squares[c];
  }
  // dx = scale * (pixels * dy - dBeta - xHat * dGamma), per channel.
  const scale = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = floats[at.gamma + c] * invStd[c] / pixels;
  }
  for (let row = 0; row < size; row += channels) {
    const dy = at.dy + row;
    const x = at.x + row;
    const dx = at.dx + row;
    for (let c = 0; c < channels; c++) {
      const xHat = (floats[x + c] - mean[c]) * invStd[c];
      floats[dx + c] = scale[c] *
        (pixels * floats[dy + c] - sums[c] - xHat * squares[c]);
    }
  }
}
