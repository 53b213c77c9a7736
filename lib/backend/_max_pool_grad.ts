/**
 * The max-pool gradient on float32 NHWC data in one memory (the wasm
 * heap), addressed by float indices.
 *
 * Each output window sends its gradient to the first position, in
 * row-major window order, where the window's maximum occurs, as the tfjs cpu
 * backend does. Windows are visited in output order, so a position that is
 * the maximum of several overlapping windows sums their gradients in that
 * order.
 *
 * @module
 */

import type { ConvGeometry } from "./_blas_conv.ts";

let best = new Float32Array(0);
let where = new Int32Array(0);

/**
 * Writes dx = the gradient of max-pooling `x` given the output gradient
 * `dy`. `x`, `dy` and `dx` are float indices into `floats`; dx is
 * overwritten. The pool's channels are `g.inChannels`, and padding is
 * never chosen as a maximum.
 */
export function maxPoolGradInto(
  floats: Float32Array,
  x: number,
  dy: number,
  dx: number,
  g: ConvGeometry,
): void {
  const { inHeight, inWidth, outHeight, outWidth } = g;
  const channels = g.inChannels;
  const imageSize = inHeight * inWidth * channels;
  floats.fill(0, dx, dx + g.batchSize * imageSize);
  if (best.length < channels) {
    best = new Float32Array(channels);
    where = new Int32Array(channels);
  }
  let d = dy;
  for (let n = 0; n < g.batchSize; n++) {
    const image = n * imageSize;
    for (let i = 0; i < outHeight; i++) {
      const top = i * g.strideHeight - g.padTop;
      for (let j = 0; j < outWidth; j++) {
        const left = j * g.strideWidth - g.padLeft;
        best.fill(-Infinity, 0, channels);
        where.fill(-1, 0, channels);
        for (let a = 0; a < g.filterHeight; a++) {
          const row = top + a;
          if (row < 0 || row >= inHeight) continue;
          for (let b = 0; b < g.filterWidth; b++) {
            const column = left + b;
            if (column < 0 || column >= inWidth) continue;
            const offset = image + (row * inWidth + column) * channels;
            const source = x + offset;
            for (let c = 0; c < channels; c++) {
              const value = floats[source + c];
              if (value > best[c]) {
                best[c] = value;
                where[c] = offset + c;
              }
            }
          }
        }
        for (let c = 0; c < channels; c++) {
          if (where[c] >= 0) floats[dx + where[c]] += floats[d + c];
        }
        d += channels;
      }
    }
  }
}
