/**
 * Frame preprocessing of the on-disk datasets: JPEG decoding, random
 * resized crops, resizing with an antialiasing filter, flips and ImageNet
 * normalisation. Images are interleaved RGB, row-major [H, W, 3].
 *
 * @module
 */

import jpeg from "jpeg-js";
import type { Random } from "../_random.ts";

/** A decoded 8-bit RGB image. */
export interface RgbImage {
  width: number;
  height: number;
  /** Pixels, shape [height, width, 3] row-major. */
  data: Uint8Array;
}

/** A rectangle of whole pixels. */
export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** ImageNet channel means of pixel values in [0, 1] (R, G, B). */
export const IMAGENET_MEAN = Object.freeze([0.485, 0.456, 0.406] as const);
/** ImageNet channel standard deviations of pixel values in [0, 1]. */
export const IMAGENET_STD = Object.freeze([0.229, 0.224, 0.225] as const);

/** Area range, as a fraction of the image, of a random resized crop. */
export const CROP_SCALE = Object.freeze([0.08, 1] as const);
/** Aspect ratio (width / height) range of a random resized crop. */
export const CROP_RATIO = Object.freeze([3 / 4, 4 / 3] as const);

/**
 * Decodes a baseline or progressive JPEG to RGB; grey images are expanded
 * to three equal channels.
 *
 * @throws {Error} If the data is not a complete JPEG; the message names
 * `path`.
 */
export function decodeJpeg(bytes: Uint8Array, path: string): RgbImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // The default (true) returns a partly grey image for a truncated
      // file instead of raising.
      tolerantDecoding: false,
    });
  } catch (error) {
    throw new Error(
      `Cannot decode JPEG file ${path}: ${(error as Error).message}. ` +
        `Re-extract the frames with deno task prepare.`,
    );
  }
  const { width, height, data } = decoded;
  if (width < 1 || height < 1 || data.length !== width * height * 3) {
    throw new Error(
      `Cannot decode JPEG file ${path}: got ${width} x ${height} pixels ` +
        `and ${data.length} bytes of RGB data.`,
    );
  }
  return { width, height, data };
}

/**
 * Draws the crop of a random resized crop, as torchvision's
 * `RandomResizedCrop` does: up to ten tries of an area fraction uniform in
 * {@linkcode CROP_SCALE} and a log-uniform aspect ratio in
 * {@linkcode CROP_RATIO}, then a centre crop with the ratio clamped.
 */
export function randomCropBox(
  width: number,
  height: number,
  random: Random,
): CropBox {
  const area = width * height;
  const logMin = Math.log(CROP_RATIO[0]);
  const logMax = Math.log(CROP_RATIO[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area *
      (CROP_SCALE[0] + random.next() * (CROP_SCALE[1] - CROP_SCALE[0]));
    const ratio = Math.exp(logMin + random.next() * (logMax - logMin));
    const w = Math.round(Math.sqrt(targetArea * ratio));
    const h = Math.round(Math.sqrt(targetArea / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return {
        left: random.int(width - w + 1),
        top: random.int(height - h + 1),
        width: w,
        height: h,
      };
    }
  }

  // Fallback: the largest centred crop whose ratio is inside the range.
  let w = width;
  let h = height;
  if (width / height < CROP_RATIO[0]) h = Math.round(w / CROP_RATIO[0]);
  else if (width / height > CROP_RATIO[1]) w = Math.round(h * CROP_RATIO[1]);
  return {
    left: Math.floor((width - w) / 2),
    top: Math.floor((height - h) / 2),
    width: w,
    height: h,
  };
}

interface FilterTaps {
  /** First input index of each output pixel. */
  start: Int32Array;
  /** Taps of each output pixel. */
  count: Int32Array;
  /** Weights, `maxTaps` per output pixel. */
  weights: Float32Array;
  maxTaps: number;
}

// Triangle-filter taps for resampling `inSize` pixels starting at `offset`
// to `outSize` pixels. The filter widens by the scale when shrinking, so
// every input pixel contributes (antialiasing, as PIL's bilinear resize).
function filterTaps(offset: number, inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const maxTaps = Math.ceil(2 * support) + 2;
  const taps: FilterTaps = {
    start: new Int32Array(outSize),
    count: new Int32Array(outSize),
    weights: new Float32Array(outSize * maxTaps),
    maxTaps,
  };
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale; // in input pixels, from the crop edge
    const first = Math.max(0, Math.floor(centre - support));
    const last = Math.min(inSize - 1, Math.ceil(centre + support));
    let total = 0;
    let count = 0;
    for (let i = first; i <= last; i++) {
      const weight = Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support);
      taps.weights[o * maxTaps + count] = weight;
      total += weight;
      count++;
    }
    for (let k = 0; k < count; k++) taps.weights[o * maxTaps + k] /= total;
    taps.start[o] = offset + first;
    taps.count[o] = count;
  }
  return taps;
}

/**
 * Resizes the `box` region of `image` to `size` x `size` pixels with a
 * separable triangle filter that widens when shrinking (the equivalent of
 * PIL's antialiased bilinear resize).
 *
 * @returns RGB values in [0, 255], shape [size, size, 3].
 */
export function resizeCrop(
  image: RgbImage,
  box: CropBox,
  size: number,
): Float32Array {
  const columns = filterTaps(box.left, box.width, size);
  const rows = filterTaps(box.top, box.height, size);

  // Horizontal pass over the rows of the box: [box.height, size, 3].
  const wide = new Float32Array(box.height * size * 3);
  for (let y = 0; y < box.height; y++) {
    const rowStart = (box.top + y) * image.width * 3;
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < columns.count[x]; k++) {
        const weight = columns.weights[x * columns.maxTaps + k];
        const p = rowStart + (columns.start[x] + k) * 3;
        r += weight * image.data[p];
        g += weight * image.data[p + 1];
        b += weight * image.data[p + 2];
      }
      const q = (y * size + x) * 3;
      wide[q] = r;
      wide[q + 1] = g;
      wide[q + 2] = b;
    }
  }

  // Vertical pass: [size, size, 3].
  const output = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let k = 0; k < rows.count[y]; k++) {
      const weight = rows.weights[y * rows.maxTaps + k];
      const source = (rows.start[y] - box.top + k) * size * 3;
      for (let i = 0; i < size * 3; i++) {
        output[y * size * 3 + i] += weight * wide[source + i];
      }
    }
  }
  return output;
}

/** Mirrors an RGB image of `size` x `size` left to right in place. */
export function flipHorizontal(pixels: Float32Array, size: number): void {
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size / 2 - 0.5; x++) {
      const a = (y * size + x) * 3;
      const b = (y * size + size - 1 - x) * 3;
      for (let c = 0; c < 3; c++) {
        const swap = pixels[a + c];
        pixels[a + c] = pixels[b + c];
        pixels[b + c] = swap;
      }
    }
  }
}

/**
 * Writes `(value / 255 - mean) / std` per channel, with the ImageNet mean
 * and standard deviation, into `output` starting at `offset`.
 */
export function normaliseImageNet(
  pixels: Float32Array,
  output: Float32Array,
  offset: number,
): void {
  for (let i = 0; i < pixels.length; i++) {
    const c = i % 3;
    output[offset + i] = (pixels[i] / 255 - IMAGENET_MEAN[c]) /
      IMAGENET_STD[c];
  }
}
