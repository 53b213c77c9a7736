import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertRelativeError } from "../_testing.ts";
import { camTargets, classActivationMaps } from "./gradcam.ts";

await tf.setBackend("cpu");

function values(shape: number[], seed: number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = Math.sin(seed * 12.9898 + i * 78.233) * 1.5;
  }
  return out;
}

Deno.test("classActivationMaps() matches a hand computation", () => {
  // Maps [B=2, 2, 2, C=3]; head = mean pooling then W [3, 2].
  const mapValues = values([2, 2, 2, 3], 1);
  const w = [[0.5, -1], [2, 0.25], [-0.75, 1]];
  const targets = new Int32Array([1, 0]);
  const map = tf.tensor4d(mapValues, [2, 2, 2, 3]);
  const [cam] = classActivationMaps(
    ([a]) => tf.matMul(tf.mean(a, [1, 2]) as tf.Tensor2D, tf.tensor2d(w)),
    [map],
    targets,
  );
  assert.deepEqual(cam.shape, [2, 2, 2]);
  // dScore/dA[p, k] = W[k, c] / P, so alpha_k = W[k, c] / 4.
  const expected: number[] = [];
  for (let b = 0; b < 2; b++) {
    for (let p = 0; p < 4; p++) {
      let sum = 0;
      for (let k = 0; k < 3; k++) {
        sum += (w[k][targets[b]] / 4) * mapValues[(b * 4 + p) * 3 + k];
      }
      expected.push(Math.max(0, sum));
    }
  }
  assertRelativeError("CAM", cam.dataSync(), expected, 1e-6);
  assert.ok(expected.some((v) => v === 0), "the ReLU should clip something");
  assert.ok(expected.some((v) => v > 0), "some positions should be positive");
  tf.dispose([cam, map]);
});

// A gated head in float64 for finite differences, the same maths as the
// tfjs head below: logits = W2 (sigmoid(W1 fa) * fv), fa and fv pooled.
const W1 = [[0.4, -0.3], [0.8, 0.5]];
const W2 = [[1.2, -0.7, 0.3], [-0.4, 0.9, 0.6]];

function headScore64(
  audio: Float64Array,
  visual: Float64Array,
  positions: [number, number],
  target: number,
): number {
  const channels = 2;
  const fa = [0, 0];
  const fv = [0, 0];
  for (let p = 0; p < positions[0]; p++) {
    for (let k = 0; k < channels; k++) {
      fa[k] += audio[p * channels + k] / positions[0];
    }
  }
  for (let p = 0; p < positions[1]; p++) {
    for (let k = 0; k < channels; k++) {
      fv[k] += visual[p * channels + k] / positions[1];
    }
  }
  const gate = [0, 1].map((j) =>
    1 / (1 + Math.exp(-(fa[0] * W1[0][j] + fa[1] * W1[1][j])))
  );
  const h = [0, 1].map((j) => gate[j] * fv[j]);
  return h[0] * W2[0][target] + h[1] * W2[1][target];
}

Deno.test("classActivationMaps() matches finite differences", () => {
  // One sample: audio map [1, 3, 2, C=2], visual map [1, T=2, 2, 2, C=2].
  const audio64 = Float64Array.from(values([1, 3, 2, 2], 3));
  const visual64 = Float64Array.from(values([1, 2, 2, 2, 2], 4));
  const target = 2;
  const step = 1e-6;
  const gradient = (which: "audio" | "visual") => {
    const base = which === "audio" ? audio64 : visual64;
    const grad = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const plus = Float64Array.from(base);
      const minus = Float64Array.from(base);
      plus[i] += step;
      minus[i] -= step;
      const [ap, vp] = which === "audio" ? [plus, visual64] : [audio64, plus];
      const [am, vm] = which === "audio" ? [minus, visual64] : [audio64, minus];
      grad[i] = (headScore64(ap, vp, [6, 8], target) -
        headScore64(am, vm, [6, 8], target)) / (2 * step);
    }
    return grad;
  };
  const camFromGradient = (
    map: Float64Array,
    grad: Float64Array,
    p: number,
  ) => {
    const alpha = [0, 1].map((k) => {
      let sum = 0;
      for (let i = 0; i < p; i++) sum += grad[i * 2 + k];
      return sum / p;
    });
    return Array.from(
      { length: p },
      (_, i) => Math.max(0, alpha[0] * map[i * 2] + alpha[1] * map[i * 2 + 1]),
    );
  };
  const expectedAudio = camFromGradient(audio64, gradient("audio"), 6);
  const expectedVisual = camFromGradient(visual64, gradient("visual"), 8);

  const w1 = tf.tensor2d(W1);
  const w2 = tf.tensor2d(W2);
  const audio = tf.tensor4d(Float32Array.from(audio64), [1, 3, 2, 2]);
  const visual = tf.tensor5d(Float32Array.from(visual64), [1, 2, 2, 2, 2]);
  const [audioCam, visualCam] = classActivationMaps(
    ([a, v]) => {
      const fa = tf.mean(a, [1, 2]) as tf.Tensor2D;
      const fv = tf.mean(v, [1, 2, 3]) as tf.Tensor2D;
      const gate = tf.sigmoid(tf.matMul(fa, w1));
      return tf.matMul(tf.mul(gate, fv), w2) as tf.Tensor2D;
    },
    [audio, visual],
    new Int32Array([target]),
  );
  assert.deepEqual(visualCam.shape, [1, 2, 2, 2]);
  assert.ok(expectedAudio.some((v) => v > 0), "audio CAM is all zero");
  assert.ok(expectedVisual.some((v) => v > 0), "visual CAM is all zero");
  assertRelativeError("audio CAM", audioCam.dataSync(), expectedAudio, 1e-4);
  assertRelativeError("visual CAM", visualCam.dataSync(), expectedVisual, 1e-4);
  tf.dispose([w1, w2, audio, visual, audioCam, visualCam]);
});

Deno.test("classActivationMaps() leaves no tensors behind", () => {
  const map = tf.tensor4d(values([2, 2, 2, 3], 5), [2, 2, 2, 3]);
  const w = tf.tensor2d(values([3, 4], 6), [3, 4]);
  const score = ([a]: tf.Tensor[]) =>
    tf.matMul(tf.mean(a, [1, 2]) as tf.Tensor2D, w) as tf.Tensor2D;
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    classActivationMaps(score, [map], new Int32Array([0, 3]))[0].dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([map, w]);
});

Deno.test("classActivationMaps() rejects a batch mismatch", () => {
  const map = tf.zeros([2, 2, 2, 3]);
  assert.throws(
    () =>
      classActivationMaps(
        ([a]) => tf.mean(a, [1, 2]) as tf.Tensor2D,
        [map],
        new Int32Array([0]),
      ),
    /batch 2 differs from 1 targets/,
  );
  map.dispose();
});

Deno.test("camTargets() picks labels or argmax", () => {
  const logits = tf.tensor2d([[0, 3, 1], [5, 1, 2]]);
  const labels = new Int32Array([2, 2]);
  assert.deepEqual([...camTargets(logits, labels, "label")], [2, 2]);
  assert.deepEqual([...camTargets(logits, labels, "predicted")], [1, 0]);
  logits.dispose();
});
