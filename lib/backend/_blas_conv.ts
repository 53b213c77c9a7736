/**
 * Conv2D and its two gradients as sgemm calls, on float32 NHWC data that
 * lives in one memory (the wasm heap) addressed by byte offsets.
 *
 * Notation: x [N, H, W, Ci], filter [kh, kw, Ci, Co], y and dy
 * [N, Ho, Wo, Co]. With M = N * Ho * Wo output pixels and K = kh * kw * Ci,
 * the filter is already a row-major K x Co matrix and y an M x Co matrix.
 * im2col builds the M x K matrix whose row m contains the input patch of
 * output pixel m, so y = im2col(x) W, dW = im2col(x)^T dy, and dx is the
 * col2im sum of dy W^T. A 1x1 filter at stride 1 without padding needs no
 * im2col: x itself is the M x Ci matrix.
 *
 * im2col and col2im run in JavaScript on row chunks of at most
 * {@linkcode CHUNK_FLOATS} floats (one row when a row is larger) in a scratch array outside the wasm
 * heap, so they add no heap memory.
 *
 * @module
 */

import type { OpenBlas } from "./_openblas.ts";

/** Geometry of one convolution, in the names of tfjs's Conv2DInfo. */
export interface ConvGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  /** Rows of zero padding above the input. */
  padTop: number;
  /** Columns of zero padding left of the input. */
  padLeft: number;
}

/** A float32 view of a whole memory and the address of its first byte. */
export interface Memory {
  /** The memory as float32 values; index = byte offset / 4. */
  floats: Float32Array;
  /** Address of byte 0. */
  base: Deno.PointerObject;
}

/**
 * Largest im2col chunk, in floats (32 MiB). Large enough that each sgemm
 * call has thousands of rows, small enough to stay out of the way of the
 * wasm heap's 4 GiB.
 */
export const CHUNK_FLOATS = 8 * 1024 * 1024;

let chunkFloats = CHUNK_FLOATS;
let scratch = new Float32Array(0);

/**
 * Sets the im2col chunk size in floats, so that tests can split small
 * convolutions into several chunks. Returns the previous size.
 */
export function setChunkFloats(floats: number): number {
  const previous = chunkFloats;
  chunkFloats = floats;
  return previous;
}

function scratchOf(floats: number): Float32Array {
  if (scratch.length < floats) {
    scratch = offHeapFloats(floats);
  }
  return scratch;
}

/** * Allocates floats whose address stays valid across JavaScript lines. V8
 * keeps a small typed array made with a length inside its own heap, where
 * a garbage collection may move it. An ArrayBuffer's storage never moves.
 */
function offHeapFloats(length: number): Float32Array<ArrayBuffer> {
  return new Float32Array(new ArrayBuffer(4 * length));
}

function pointerAt(memory: Memory, floatIndex: number): Deno.PointerValue {
  return Deno.UnsafePointer.offset(memory.base, floatIndex * 4);
}

function isPointwise(g: ConvGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1 &&
    g.strideHeight === 1 && g.strideWidth === 1 &&
    g.padTop === 0 && g.padLeft === 0 &&
    g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

function patchSize(g: ConvGeometry): number {
  return g.filterHeight * g.filterWidth * g.inChannels;
}

function rowsPerChunk(g: ConvGeometry): number {
  return Math.max(1, Math.floor(chunkFloats / patchSize(g)));
}

/**
 * Shortest run, in floats, copied with `TypedArray.set`. Below it a loop is
 * faster, because each `set` call costs a view object.
 */
const SET_MIN_FLOATS = 24;

/** Copies `length` floats from `source[from..]` to `target[to..]`. */
function copyRun(
  source: Float32Array,
  from: number,
  target: Float32Array,
  to: number,
  length: number,
): void {
  if (length >= SET_MIN_FLOATS) {
    target.set(source.subarray(from, from + length), to);
    return;
  }
  for (let t = 0; t < length; t++) target[to + t] = source[from + t];
}

/**
 * Copies the input patches of output pixels [m0, m1) into `col`, one row
 * of K floats per pixel, with zeros where a patch reaches into padding.
 */
function im2col(
  x: Float32Array,
  xStart: number,
  g: ConvGeometry,
  m0: number,
  m1: number,
  col: Float32Array,
): void {
  const { inHeight, inWidth, inChannels, outWidth, filterHeight } = g;
  const filterWidth = g.filterWidth;
  const runLength = filterWidth * inChannels;
  const pixelsPerImage = g.outHeight * outWidth;
  let d = 0;
  for (let m = m0; m < m1; m++) {
    const n = Math.floor(m / pixelsPerImage);
    const pixel = m - n * pixelsPerImage;
    const i = Math.floor(pixel / outWidth);
    const j = pixel - i * outWidth;
    const top = i * g.strideHeight - g.padTop;
    const left = j * g.strideWidth - g.padLeft;
    const inside = left >= 0 && left + filterWidth <= inWidth;
    for (let a = 0; a < filterHeight; a++) {
      const row = top + a;
      if (row < 0 || row >= inHeight) {
        col.fill(0, d, d + runLength);
        d += runLength;
        continue;
      }
      const rowStart = xStart + (n * inHeight + row) * inWidth * inChannels;
      if (inside) {
        // The kw taps of this row are one contiguous run of kw * Ci floats.
        copyRun(x, rowStart + left * inChannels, col, d, runLength);
        d += runLength;
        continue;
      }
      for (let b = 0; b < filterWidth; b++) {
        const column = left + b;
        if (column < 0 || column >= inWidth) {
          col.fill(0, d, d + inChannels);
        } else {
          copyRun(x, rowStart + column * inChannels, col, d, inChannels);
        }
        d += inChannels;
      }
    }
  }
}

/**
 * Adds each row of `col` (pixels [m0, m1)) back onto the input positions
 * its patch came from; padding positions are dropped. The inverse
 * scatter of {@linkcode im2col}.
 */
function col2imAdd(
  col: Float32Array,
  g: ConvGeometry,
  m0: number,
  m1: number,
  dx: Float32Array,
  dxStart: number,
): void {
  const { inHeight, inWidth, inChannels, outWidth, filterHeight } = g;
  const filterWidth = g.filterWidth;
  const runLength = filterWidth * inChannels;
  const pixelsPerImage = g.outHeight * outWidth;
  let d = 0;
  for (let m = m0; m < m1; m++) {
    const n = Math.floor(m / pixelsPerImage);
    const pixel = m - n * pixelsPerImage;
    const i = Math.floor(pixel / outWidth);
    const j = pixel - i * outWidth;
    const top = i * g.strideHeight - g.padTop;
    const left = j * g.strideWidth - g.padLeft;
    const inside = left >= 0 && left + filterWidth <= inWidth;
    for (let a = 0; a < filterHeight; a++) {
      const row = top + a;
      if (row < 0 || row >= inHeight) {
        d += runLength;
        continue;
      }
      const rowStart = dxStart + (n * inHeight + row) * inWidth * inChannels;
      if (inside) {
        const s = rowStart + left * inChannels;
        for (let t = 0; t < runLength; t++) dx[s + t] += col[d + t];
        d += runLength;
        continue;
      }
      for (let b = 0; b < filterWidth; b++) {
        const column = left + b;
        if (column >= 0 && column < inWidth) {
          const s = rowStart + column * inChannels;
          for (let t = 0; t < inChannels; t++) dx[s + t] += col[d + t];
        }
        d += inChannels;
      }
    }
  }
}

/**
 * Computes y = conv2d(x, filter) into y. Here and below, tensors are
 * given as float indices into `memory`, and outputs are overwritten.
 */
export function conv2dGemm(
  blas: OpenBlas,
  memory: Memory,
  g: ConvGeometry,
  x: number,
  filter: number,
  y: number,
): void {
  convolve(blas, memory, g, x, pointerAt(memory, filter), y);
}

/**
 * Computes y = conv2d(x, filter) into y, where the K x Co filter matrix
 * may live outside `memory`.
 */
function convolve(
  blas: OpenBlas,
  memory: Memory,
  g: ConvGeometry,
  x: number,
  filter: Deno.PointerValue,
  y: number,
): void {
  const m = g.batchSize * g.outHeight * g.outWidth;
  const k = patchSize(g);
  const co = g.outChannels;
  if (isPointwise(g)) {
    blas.sgemm(
      false,
      false,
      m,
      co,
      k,
      1,
      pointerAt(memory, x),
      k,
      filter,
      co,
      0,
      pointerAt(memory, y),
      co,
    );
    return;
  }
  const chunk = rowsPerChunk(g);
  const col = scratchOf(Math.min(chunk, m) * k);
  const colPointer = Deno.UnsafePointer.of(col);
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const rows = Math.min(chunk, m - m0);
    im2col(memory.floats, x, g, m0, m0 + rows, col);
    blas.sgemm(
      false,
      false,
      rows,
      co,
      k,
      1,
      colPointer,
      k,
      filter,
      co,
      0,
      pointerAt(memory, y + m0 * co),
      co,
    );
  }
}

/** Computes the filter gradient dW [kh, kw, Ci, Co] = im2col(x)^T dy. */
export function conv2dFilterGradGemm(
  blas: OpenBlas,
  memory: Memory,
  g: ConvGeometry,
  x: number,
  dy: number,
  dw: number,
): void {
  const m = g.batchSize * g.outHeight * g.outWidth;
  const k = patchSize(g);
  const co = g.outChannels;
  if (isPointwise(g)) {
    blas.sgemm(
      true,
      false,
      k,
      co,
      m,
      1,
      pointerAt(memory, x),
      k,
      pointerAt(memory, dy),
      co,
      0,
      pointerAt(memory, dw),
      co,
    );
    return;
  }
  const chunk = rowsPerChunk(g);
  const col = scratchOf(Math.min(chunk, m) * k);
  const colPointer = Deno.UnsafePointer.of(col);
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const rows = Math.min(chunk, m - m0);
    im2col(memory.floats, x, g, m0, m0 + rows, col);
    // The first chunk overwrites dW and later ones add to it, always in
    // the same order, so the sum does not depend on timing.
    blas.sgemm(
      true,
      false,
      k,
      co,
      rows,
      1,
      colPointer,
      k,
      pointerAt(memory, dy + m0 * co),
      co,
      m0 === 0 ? 0 : 1,
      pointerAt(memory, dw),
      co,
    );
  }
}

/**
 * At stride 1 the input gradient is itself a convolution: dy, padded by
 * kh - 1 - padTop rows and kw - 1 - padLeft columns, correlated with the
 * filter rotated by 180 degrees and with Ci and Co swapped. This is the
 * geometry of that convolution, or undefined when the padding does not
 * allow it (then col2im is used).
 */
function transposedGeometry(g: ConvGeometry): ConvGeometry | undefined {
  if (g.strideHeight !== 1 || g.strideWidth !== 1) return undefined;
  const padTop = g.filterHeight - 1 - g.padTop;
  const padLeft = g.filterWidth - 1 - g.padLeft;
  if (padTop < 0 || padLeft < 0) return undefined;
  return {
    batchSize: g.batchSize,
    inHeight: g.outHeight,
    inWidth: g.outWidth,
    inChannels: g.outChannels,
    outHeight: g.inHeight,
    outWidth: g.inWidth,
    outChannels: g.inChannels,
    filterHeight: g.filterHeight,
    filterWidth: g.filterWidth,
    strideHeight: 1,
    strideWidth: 1,
    padTop,
    padLeft,
  };
}

let rotatedScratch = new Float32Array(0);

/**
 * Writes the filter [kh, kw, Ci, Co] rotated by 180 degrees, as
 * [kh, kw, Co, Ci], into a scratch array and returns it.
 */
function rotatedFilter(
  w: Float32Array,
  start: number,
  g: ConvGeometry,
): Float32Array {
  const { filterHeight: kh, filterWidth: kw } = g;
  const ci = g.inChannels;
  const co = g.outChannels;
  const size = kh * kw * ci * co;
  if (rotatedScratch.length < size) rotatedScratch = offHeapFloats(size);
  const out = rotatedScratch;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const source = start + ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      const target = (a * kw + b) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) {
          out[target + o * ci + i] = w[source + i * co + o];
        }
      }
    }
  }
  return out;
}

/**
 * Computes the input gradient dx [N, H, W, Ci]: at stride 1 as the
 * convolution of {@linkcode transposedGeometry} (im2col copies only), at
 * other strides as col2im(dy W^T).
 */
export function conv2dInputGradGemm(
  blas: OpenBlas,
  memory: Memory,
  g: ConvGeometry,
  dy: number,
  filter: number,
  dx: number,
): void {
  const m = g.batchSize * g.outHeight * g.outWidth;
  const k = patchSize(g);
  const co = g.outChannels;
  if (isPointwise(g)) {
    blas.sgemm(
      false,
      true,
      m,
      k,
      co,
      1,
      pointerAt(memory, dy),
      co,
      pointerAt(memory, filter),
      co,
      0,
      pointerAt(memory, dx),
      k,
    );
    return;
  }
  const transposed = transposedGeometry(g);
  if (transposed !== undefined) {
    const rotated = rotatedFilter(memory.floats, filter, g);
    convolve(blas, memory, transposed, dy, Deno.UnsafePointer.of(rotated), dx);
    return;
  }
  const inputSize = g.batchSize * g.inHeight * g.inWidth * g.inChannels;
  memory.floats.fill(0, dx, dx + inputSize);
  const chunk = rowsPerChunk(g);
  const col = scratchOf(Math.min(chunk, m) * k);
  const colPointer = Deno.UnsafePointer.of(col);
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const rows = Math.min(chunk, m - m0);
    blas.sgemm(
      false,
      true,
      rows,
      k,
      co,
      1,
      pointerAt(memory, dy + m0 * co),
      co,
      pointerAt(memory, filter),
      co,
      0,
      colPointer,
      k,
    );
    col2imAdd(col, g, m0, m0 + rows, memory.floats, dx);
  }
}
