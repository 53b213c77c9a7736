/**
 * Inputs shared by the convolution kernel tests: deterministic values and
 * a table of convolution shapes, strides and paddings.
 *
 * @module
 */

import type { ConvPad } from "./_conv_grads.ts";

/** Deterministic values in [-1, 1), so cpu and wasm see the same data. */
export function values(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One convolution of the test table. */
export interface ConvCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: ConvPad;
}

/** Strides 1, 2 and [2, 1], every padding kind, 1x1 to 7x7 filters. */
export const CONV_CASES: ConvCase[] = [
  {
    name: "3x3 s1 same",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 1,
    pad: "same",
  },
  {
    name: "3x3 s1 valid",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 1,
    pad: "valid",
  },
  {
    name: "3x3 s2 same",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 2,
    pad: "same",
  },
  {
    name: "3x3 s2 valid",
    x: [3, 9, 7, 4],
    filter: [3, 3, 4, 2],
    strides: 2,
    pad: "valid",
  },
  {
    name: "3x3 s2 even",
    x: [2, 8, 8, 3],
    filter: [3, 3, 3, 6],
    strides: 2,
    pad: "same",
  },
  {
    name: "1x1 s1",
    x: [2, 9, 7, 3],
    filter: [1, 1, 3, 5],
    strides: 1,
    pad: "same",
  },
  {
    name: "1x1 s2",
    x: [2, 9, 7, 6],
    filter: [1, 1, 6, 4],
    strides: 2,
    pad: "valid",
  },
  {
    name: "7x7 s2 same",
    x: [2, 17, 15, 3],
    filter: [7, 7, 3, 4],
    strides: 2,
    pad: "same",
  },
  {
    name: "strides [2, 1]",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: [2, 1],
    pad: "same",
  },
  {
    name: "numeric pad 1",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 2,
    pad: 1,
  },
  {
    name: "explicit pads",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 2,
    pad: [[0, 0], [2, 0], [1, 3], [0, 0]],
  },
  {
    name: "pad beyond filter",
    x: [2, 9, 7, 3],
    filter: [2, 2, 3, 5],
    strides: 2,
    pad: [[0, 0], [4, 1], [0, 0], [0, 0]],
  },
];
