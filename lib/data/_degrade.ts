/**
 * Image and waveform operations that make a modality weaker: placement and
 * shifting of a digit, blur, contrast, occlusion, pixel noise, and noise
 * mixed into speech at a given signal-to-noise ratio. All randomness comes
 * from the `Random` passed in, so results are reproducible.
 *
 * @module
 */

import type { Random } from "../_random.ts";

// Quantiles of N(0, 1) at 2^16 equally likely levels, rescaled to unit
// variance. One table lookup per draw is several times faster than
// Box-Muller, which dominated the time of a training epoch. The tails are
// cut at about 4.3 standard deviations, which noise for degradation does
// not need.
const NORMAL_LEVELS = 1 << 16;
const normalQuantiles = buildNormalQuantiles(NORMAL_LEVELS);

function buildNormalQuantiles(levels: number): Float32Array {
  // Normal CDF on a grid over [-8, 8] by the trapezoidal rule.
  const step = 1e-3;
  const points = Math.round(16 / step) + 1;
  const cdf = new Float64Array(points);
  const density = (x: number) =>
    Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  for (let i = 1; i < points; i++) {
    const x = -8 + i * step;
    cdf[i] = cdf[i - 1] + 0.5 * step * (density(x - step) + density(x));
  }

  // Invert it at the middle probability of each level.
  const table = new Float64Array(levels);
  let i = 0;
  for (let k = 0; k < levels; k++) {
    const p = ((k + 0.5) / levels) * cdf[points - 1];
    while (cdf[i + 1] < p) i++;
    const fraction = (p - cdf[i]) / (cdf[i + 1] - cdf[i]);
    table[k] = -8 + (i + fraction) * step;
  }
  let variance = 0;
  for (const value of table) variance += value * value;
  const scale = 1 / Math.sqrt(variance / levels);
  return Float32Array.from(table, (value) => value * scale);
}

/**
 * Fills `out` with standard normal samples, drawn as one of 2^16 equally
 * likely quantiles of N(0, 1), so |value| stays below about 4.3.
 */
export function fillNormal(random: Random, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) {
    out[i] = normalQuantiles[Math.floor(random.next() * NORMAL_LEVELS)];
  }
  return out;
}

/**
 * Draws a `side` x `side` 8-bit digit into a `size` x `size` canvas in
 * [0, 1] with bilinear sampling. The digit is scaled by `size / 32` (so it
 * fills a 32-pixel canvas the way MNIST's 28-pixel digit sits in 32),
 * centred, then moved by (`shiftX`, `shiftY`) canvas pixels.
 */
export function placeDigit(
  digit: Uint8Array,
  side: number,
  size: number,
  shiftX: number,
  shiftY: number,
): Float32Array {
  const out = new Float32Array(size * size);
  const scale = size / 32;
  const origin = (size - side * scale) / 2;
  for (let y = 0; y < size; y++) {
    // Source coordinate of the output pixel centre, in digit pixels.
    const v = (y + 0.5 - origin - shiftY) / scale - 0.5;
    const v0 = Math.floor(v);
    const fv = v - v0;
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5 - origin - shiftX) / scale - 0.5;
      const u0 = Math.floor(u);
      const fu = u - u0;
      const pixel = (px: number, py: number) =>
        px < 0 || py < 0 || px >= side || py >= side
          ? 0
          : digit[py * side + px];
      const value =
        (1 - fv) * ((1 - fu) * pixel(u0, v0) + fu * pixel(u0 + 1, v0)) +
        fv * ((1 - fu) * pixel(u0, v0 + 1) + fu * pixel(u0 + 1, v0 + 1));
      out[y * size + x] = value / 255;
    }
  }
  return out;
}

/**
 * Blurs a square image in place with a separable Gaussian of standard
 * deviation `sigma` pixels, truncated at 3 sigma, zero outside the image.
 */
export function gaussianBlur(image: Float32Array, size: number, sigma: number) {
  if (sigma <= 0) return;
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) {
    kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma));
    total += kernel[k + radius];
  }
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;

  const temp = new Float32Array(image.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const xx = x + k;
        if (xx >= 0 && xx < size) {
          sum += kernel[k + radius] * image[y * size + xx];
        }
      }
      temp[y * size + x] = sum;
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const yy = y + k;
        if (yy >= 0 && yy < size) {
          sum += kernel[k + radius] * temp[yy * size + x];
        }
      }
      image[y * size + x] = sum;
    }
  }
}

/**
 * Scales each pixel's distance from the image mean by `factor` in place
 * (1 keeps the image, 0 makes it flat grey at its mean).
 */
export function adjustContrast(image: Float32Array, factor: number) {
  if (factor === 1) return;
  let mean = 0;
  for (const value of image) mean += value;
  mean /= image.length;
  for (let i = 0; i < image.length; i++) {
    image[i] = mean + factor * (image[i] - mean);
  }
}

/** Grey level of the occluding box, the middle of [0, 1]. */
export const OCCLUSION_FILL = 0.5;

/**
 * Covers a square of `fraction` of the image area with
 * {@linkcode OCCLUSION_FILL}, at a uniformly drawn position fully inside
 * the image.
 */
export function occlude(
  image: Float32Array,
  size: number,
  fraction: number,
  random: Random,
) {
  const box = Math.round(Math.sqrt(fraction) * size);
  if (box <= 0) return;
  const left = random.int(size - box + 1);
  const top = random.int(size - box + 1);
  for (let y = top; y < top + box; y++) {
    image.fill(OCCLUSION_FILL, y * size + left, y * size + left + box);
  }
}

/** Adds Gaussian noise of standard deviation `std`, then clips to [0, 1]. */
export function addPixelNoise(
  image: Float32Array,
  std: number,
  random: Random,
) {
  if (std > 0) {
    const noise = fillNormal(random, new Float32Array(image.length));
    for (let i = 0; i < image.length; i++) image[i] += std * noise[i];
  }
  for (let i = 0; i < image.length; i++) {
    image[i] = Math.min(1, Math.max(0, image[i]));
  }
}

/** Returns the mean square of `signal`. */
export function meanPower(signal: Float32Array): number {
  let sum = 0;
  for (const value of signal) sum += value * value;
  return signal.length === 0 ? 0 : sum / signal.length;
}

/**
 * Adds `noise` to `signal` in place, scaled so that its mean power over the
 * whole signal is `speechPower / 10^(snrDb / 10)`. Silent noise adds nothing.
 */
export function mixAtSnr(
  signal: Float32Array,
  noise: Float32Array,
  speechPower: number,
  snrDb: number,
) {
  const noisePower = meanPower(noise);
  if (noisePower === 0) return;
  const gain = Math.sqrt(speechPower / 10 ** (snrDb / 10) / noisePower);
  for (let i = 0; i < signal.length; i++) signal[i] += gain * noise[i];
}
