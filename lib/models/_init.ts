/**
 * Seeded weight initialisers. Values are drawn in JavaScript from
 * {@linkcode Random} rather than with tfjs's seeded ops, so that a seed
 * gives the same initial weights on every backend.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";

/** Returns a tensor of normal samples with standard deviation `std`. */
export function normalTensor(
  shape: number[],
  std: number,
  seed: number,
  name: string,
): tf.Tensor {
  const random = new Random(deriveSeed(seed, "init", name));
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = random.normal() * std;
  return tf.tensor(values, shape);
}

/**
 * Kaiming-normal in fan-out mode for a conv filter [kH, kW, inC, outC]:
 * std = sqrt(2 / (kH * kW * outC)), as torchvision's ResNet uses.
 */
export function kaimingConv(
  shape: [number, number, number, number],
  seed: number,
  name: string,
): tf.Tensor4D {
  const [kh, kw, , outC] = shape;
  const std = Math.sqrt(2 / (kh * kw * outC));
  return normalTensor(shape, std, seed, name) as tf.Tensor4D;
}

/** Xavier-normal for a dense kernel [in, out]: std = sqrt(2 / (in + out)). */
export function xavierDense(
  shape: [number, number],
  seed: number,
  name: string,
): tf.Tensor2D {
  const std = Math.sqrt(2 / (shape[0] + shape[1]));
  return normalTensor(shape, std, seed, name) as tf.Tensor2D;
}
