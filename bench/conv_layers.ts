/**
 * Times Conv2D and its two gradients on ResNet18 layers at batch 16, first
 * with the plain wasm kernels, then with the accelerated kernels (oneDNN,
 * or OpenBLAS with CAMDROP_CONV=openblas), in one process. Each entry is
 * the faster of two calls after one untimed call.
 *
 * Usage: deno run --allow-read --allow-env --allow-ffi bench/conv_layers.ts
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  installBlasKernels,
  installWasmKernels,
  uninstallBlasKernels,
} from "../lib/backend/mod.ts";

interface Layer {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number;
}

const LAYERS: Layer[] = [
  { x: [16, 56, 56, 64], filter: [3, 3, 64, 64], strides: 1 },
  { x: [16, 56, 56, 64], filter: [3, 3, 64, 128], strides: 2 },
  { x: [16, 28, 28, 128], filter: [1, 1, 128, 256], strides: 2 },
  { x: [16, 224, 224, 3], filter: [7, 7, 3, 64], strides: 2 },
];

function milliseconds(run: () => tf.Tensor): number {
  const started = performance.now();
  const out = run();
  out.dataSync();
  const elapsed = performance.now() - started;
  out.dispose();
  return elapsed;
}

function best(run: () => tf.Tensor): number {
  milliseconds(run);
  return Math.min(milliseconds(run), milliseconds(run));
}

/** Returns [forward, filter gradient, input gradient] in milliseconds. */
function timeLayer(layer: Layer): number[] {
  const x = tf.randomNormal(layer.x, 0, 1, "float32", 1) as tf.Tensor4D;
  const filter = tf.randomNormal(layer.filter, 0, 1, "float32", 2);
  const attrs = { strides: layer.strides, pad: "same", dataFormat: "NHWC" };
  const y = tf.conv2d(x, filter as tf.Tensor4D, layer.strides, "same");
  const dy = tf.randomNormal(y.shape, 0, 1, "float32", 3);
  const times = [
    best(() => tf.conv2d(x, filter as tf.Tensor4D, layer.strides, "same")),
    best(() =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
        ...attrs,
        filterShape: layer.filter,
      }) as tf.Tensor
    ),
    best(() =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, {
        ...attrs,
        inputShape: layer.x,
      }) as tf.Tensor
    ),
  ];
  tf.dispose([x, filter, y, dy]);
  return times;
}

installWasmKernels();
await tf.setBackend("wasm");
const plain = LAYERS.map(timeLayer);
const blas = installBlasKernels();
if (!blas.used) {
  throw new Error(`The accelerated kernels are not in use: ${blas.reason}`);
}
const fast = LAYERS.map(timeLayer);
uninstallBlasKernels();

console.log(`${blas.config}, ${blas.threads} threads`);
console.log(
  "layer | forward | filter gradient | input gradient (plain / accelerated)",
);
LAYERS.forEach((layer, i) => {
  const [, h, w, ci] = layer.x;
  const [kh, kw, , co] = layer.filter;
  const cells = plain[i].map((ms, k) =>
    `${ms.toFixed(0)} / ${fast[i][k].toFixed(0)} ms`
  );
  console.log(
    `${h}x${w}x${ci} -> ${co}, ${kh}x${kw}, stride ${layer.strides} | ` +
      cells.join(" | "),
  );
});
