/**
 * Timings of the wasm gradient kernels on ResNet18-sized layers and of one
 * small training step. Run with
 * `npx deno bench -A lib/backend/wasm_kernels_bench.ts`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { installWasmKernels, uninstallWasmKernels } from "./wasm_kernels.ts";

installWasmKernels();
await tf.setBackend("wasm");

interface Layer {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number;
}

// Two ResNet18 stage-one layers at batch 16 and 56 x 56.
const LAYER_S1: Layer = {
  x: [16, 56, 56, 64],
  filter: [3, 3, 64, 64],
  strides: 1,
};
const LAYER_S2: Layer = {
  x: [16, 56, 56, 64],
  filter: [3, 3, 64, 128],
  strides: 2,
};

function layerTensors(layer: Layer) {
  const x = tf.randomNormal(layer.x) as tf.Tensor4D;
  const filter = tf.randomNormal(layer.filter) as tf.Tensor4D;
  const dy = tf.tidy(() =>
    tf.randomNormal(tf.conv2d(x, filter, layer.strides, "same").shape)
  ) as tf.Tensor4D;
  return { x, filter, dy };
}

function filterGrad(layer: Layer, t: ReturnType<typeof layerTensors>) {
  const attrs = { strides: layer.strides, pad: "same", dataFormat: "NHWC" };
  const out = tf.engine().runKernel("Conv2DBackpropFilter", {
    x: t.x,
    dy: t.dy,
  }, { ...attrs, filterShape: layer.filter }) as tf.Tensor;
  out.dataSync();
  out.dispose();
}

function inputGrad(layer: Layer, t: ReturnType<typeof layerTensors>) {
  const attrs = { strides: layer.strides, pad: "same", dataFormat: "NHWC" };
  const out = tf.engine().runKernel("Conv2DBackpropInput", {
    dy: t.dy,
    filter: t.filter,
  }, { ...attrs, inputShape: layer.x }) as tf.Tensor;
  out.dataSync();
  out.dispose();
}

/** Runs `fn` with the shipped Conv2DBackpropInput kernel in place. */
function withShippedKernels(fn: () => void): void {
  uninstallWasmKernels();
  try {
    fn();
  } finally {
    installWasmKernels();
  }
}

for (const [label, layer] of [["s1", LAYER_S1], ["s2", LAYER_S2]] as const) {
  const tensors = layerTensors(layer);
  const name = `3x3 ${label} ${layer.x.join("x")} -> ${layer.filter[3]}`;
  Deno.bench({
    name: `filter grad, ${name}`,
    group: `filter ${label}`,
    n: 5,
    warmup: 1,
    fn: () => filterGrad(layer, tensors),
  });
  Deno.bench({
    name: `input grad, ${name}`,
    group: `input ${label}`,
    baseline: true,
    n: 5,
    warmup: 1,
    fn: () => inputGrad(layer, tensors),
  });
  Deno.bench({
    name: `shipped input grad, ${name}`,
    group: `input ${label}`,
    n: 2,
    warmup: 1,
    fn: () => withShippedKernels(() => inputGrad(layer, tensors)),
  });
}

// A ResNet-like stem and three conv-BN-ReLU layers, batch 16 at 64 x 64,
// trained with SGD.
const STEP_SHAPES: Record<string, number[]> = {
  stem: [7, 7, 3, 32],
  conv1: [3, 3, 32, 32],
  conv2: [3, 3, 32, 64],
  conv3: [3, 3, 64, 128],
  dense: [128, 10],
};
const variables = Object.fromEntries(
  Object.entries(STEP_SHAPES).map(([name, shape]) => [
    name,
    tf.variable(tf.mul(tf.randomNormal(shape), 0.05), true, `bench_${name}`),
  ]),
);
const gammas = [32, 32, 64, 128].map((c) => tf.variable(tf.ones([c])));
const betas = [32, 32, 64, 128].map((c) => tf.variable(tf.zeros([c])));
const images = tf.randomNormal([16, 64, 64, 3]) as tf.Tensor4D;
const labels = tf.oneHot(tf.randomUniformInt([16], 0, 10), 10);
const optimizer = tf.train.sgd(0.01);

function convBnRelu(
  x: tf.Tensor4D,
  filter: tf.Variable,
  strides: number,
  index: number,
): tf.Tensor4D {
  const y = tf.conv2d(x, filter as tf.Tensor4D, strides, "same");
  const { mean, variance } = tf.moments(y, [0, 1, 2]);
  const normed = tf.batchNorm(
    y,
    mean,
    variance,
    betas[index],
    gammas[index],
    1e-5,
  );
  return tf.relu(normed) as tf.Tensor4D;
}

Deno.bench({
  name: "training step, 4 conv-BN-ReLU, 16x64x64x3",
  group: "step",
  n: 5,
  warmup: 1,
  fn: () => {
    const loss = optimizer.minimize(() => {
      const v = variables;
      let h = convBnRelu(images, v.stem, 2, 0);
      h = convBnRelu(h, v.conv1, 1, 1);
      h = convBnRelu(h, v.conv2, 2, 2);
      h = convBnRelu(h, v.conv3, 2, 3);
      const logits = tf.matMul(tf.mean(h, [1, 2]), v.dense as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(labels, logits);
    }, true);
    loss?.dataSync();
    loss?.dispose();
  },
});
