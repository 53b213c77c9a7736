import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import assert from "node:assert/strict";
import {
  installWasmKernels,
  uninstallWasmKernels,
  wasmKernelsInstalled,
} from "./wasm_kernels.ts";
import { CONV_CASES, type ConvCase, sizeOf, values } from "./_conv_testing.ts";

// Maximum |ours - ref| / max |ref| for single kernels in float32.
const KERNEL_TOLERANCE = 1e-5;
// The same for whole-network gradients, which chain several kernels.
const NETWORK_TOLERANCE = 1e-4;

function relativeError(ours: ArrayLike<number>, ref: ArrayLike<number>) {
  assert.equal(ours.length, ref.length, "lengths differ");
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / maxRef;
}

function assertClose(
  label: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  tolerance: number,
): void {
  const error = relativeError(ours, ref);
  assert.ok(
    error <= tolerance,
    `${label}: relative error ${error.toExponential(2)} > ${tolerance}`,
  );
}

interface ConvReference {
  dyShape: number[];
  x: Float32Array;
  filter: Float32Array;
  dy: Float32Array;
  filterGrad: Float32Array;
  inputGrad: Float32Array;
}

function convAttrs(c: ConvCase) {
  return { strides: c.strides, pad: c.pad, dataFormat: "NHWC" } as const;
}

function runFilterGrad(c: ConvCase, x: tf.Tensor, dy: tf.Tensor) {
  return tf.engine().runKernel(
    "Conv2DBackpropFilter",
    { x, dy },
    { ...convAttrs(c), filterShape: c.filter },
  ) as tf.Tensor;
}

function runInputGrad(c: ConvCase, dy: tf.Tensor, filter: tf.Tensor) {
  return tf.engine().runKernel(
    "Conv2DBackpropInput",
    { dy, filter },
    { ...convAttrs(c), inputShape: c.x },
  ) as tf.Tensor;
}

async function cpuConvReference(c: ConvCase): Promise<ConvReference> {
  await tf.setBackend("cpu");
  return tf.tidy(() => {
    const x = tf.tensor4d(values(sizeOf(c.x), 1), c.x);
    const filter = tf.tensor4d(values(sizeOf(c.filter), 2), c.filter);
    const dyShape = tf.conv2d(x, filter, c.strides, c.pad).shape;
    const dy = tf.tensor(values(sizeOf(dyShape), 3), dyShape);
    return {
      dyShape,
      x: x.dataSync() as Float32Array,
      filter: filter.dataSync() as Float32Array,
      dy: dy.dataSync() as Float32Array,
      filterGrad: runFilterGrad(c, x, dy).dataSync() as Float32Array,
      inputGrad: runInputGrad(c, dy, filter).dataSync() as Float32Array,
    };
  });
}

async function useWasmWithKernels(): Promise<void> {
  installWasmKernels();
  assert.ok(await tf.setBackend("wasm"), "wasm backend did not start");
}

Deno.test("Conv2DBackpropFilter matches cpu", async () => {
  for (const c of CONV_CASES) {
    const ref = await cpuConvReference(c);
    await useWasmWithKernels();
    const ours = tf.tidy(() => {
      const x = tf.tensor(ref.x, c.x);
      const dy = tf.tensor(ref.dy, ref.dyShape);
      return runFilterGrad(c, x, dy).dataSync();
    });
    assertClose(c.name, ours, ref.filterGrad, KERNEL_TOLERANCE);
  }
});

Deno.test("Conv2DBackpropInput matches cpu", async () => {
  for (const c of CONV_CASES) {
    const ref = await cpuConvReference(c);
    await useWasmWithKernels();
    const ours = tf.tidy(() => {
      const dy = tf.tensor(ref.dy, ref.dyShape);
      const filter = tf.tensor(ref.filter, c.filter);
      return runInputGrad(c, dy, filter).dataSync();
    });
    assertClose(c.name, ours, ref.inputGrad, KERNEL_TOLERANCE);
  }
});

Deno.test("conv kernels reject NCHW and dilations", async () => {
  await useWasmWithKernels();
  const x = tf.zeros([1, 5, 5, 2]);
  const dy = tf.zeros([1, 5, 5, 3]);
  const filter = tf.zeros([3, 3, 2, 3]);
  const base = { strides: 1, pad: "same" };
  assert.throws(
    () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...base,
        dataFormat: "NCHW",
        filterShape: [3, 3, 2, 3],
      }),
    /dataFormat 'NCHW' is not supported/,
  );
  assert.throws(
    () =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
        ...base,
        dataFormat: "NHWC",
        dilations: 2,
        inputShape: [1, 5, 5, 2],
      }),
    /dilations \[2, 2\] are not supported/,
  );
  tf.dispose([x, dy, filter]);
});

const BN_SHAPE = [3, 5, 4, 6];
const BN_INPUTS = ["x", "mean", "variance", "offset", "scale"] as const;

/** Gradients of sum(batchNorm(...) * weights) for every input. */
function batchNormGradients(
  data: Record<string, Float32Array>,
): Float32Array[] {
  return tf.tidy(() => {
    const weights = tf.tensor(data.weights, BN_SHAPE);
    const x = tf.tensor4d(data.x, BN_SHAPE as [number, number, number, number]);
    const mean = tf.tensor1d(data.mean);
    const variance = tf.tensor1d(data.variance.map((v) => Math.abs(v) + 0.1));
    const offset = tf.tensor1d(data.offset);
    const scale = tf.tensor1d(data.scale);
    const loss = (...args: tf.Tensor[]) => {
      const [xs, m, v, o, s] = args;
      const y = tf.batchNorm(xs as tf.Tensor4D, m, v, o, s, 1e-3);
      return tf.sum(tf.mul(y, weights));
    };
    // NOTE: tfjs 4.22 cannot differentiate batchNorm without a scale or an
    // offset on any backend, because the engine reads the absent input.
    const gradients = tf.grads(loss)([x, mean, variance, offset, scale]);
    return gradients.map((g) => g.dataSync() as Float32Array);
  });
}

Deno.test("batch-norm gradient matches cpu", async () => {
  const channels = BN_SHAPE[3];
  const data: Record<string, Float32Array> = {
    weights: values(sizeOf(BN_SHAPE), 10),
    x: values(sizeOf(BN_SHAPE), 11),
    mean: values(channels, 12),
    variance: values(channels, 13),
    offset: values(channels, 14),
    scale: values(channels, 15),
  };
  await tf.setBackend("cpu");
  const ref = batchNormGradients(data);
  await useWasmWithKernels();
  const ours = batchNormGradients(data);
  assert.equal(ours.length, ref.length);
  for (let i = 0; i < ref.length; i++) {
    assertClose(`d${BN_INPUTS[i]}`, ours[i], ref[i], KERNEL_TOLERANCE);
  }
});

Deno.test("batch-norm gradient runs no Tile", async () => {
  await useWasmWithKernels();
  const x = tf.tensor4d(values(96, 20), [2, 4, 3, 4]);
  const mean = tf.tensor1d([0.1, 0.2, 0.3, 0.4]);
  const variance = tf.tensor1d([1, 2, 3, 4]);
  const offset = tf.tensor1d([0, 1, 0, 1]);
  const scale = tf.tensor1d([1, 0.5, 2, 1]);
  const grad = tf.grad((input) => {
    const y = tf.batchNorm(input as tf.Tensor4D, mean, variance, offset, scale);
    return tf.sum(y);
  });
  const profile = await tf.profile(() => grad(x));
  const kernels = profile.kernelNames;
  assert.ok(kernels.includes("FusedBatchNorm"), `ran ${kernels}`);
  assert.ok(!kernels.includes("Tile"), `ran ${kernels}`);
  tf.dispose(profile.result as tf.Tensor);

  // The check can fail: tfjs-core's own gradient does run Tile.
  uninstallWasmKernels();
  try {
    const shipped = await tf.profile(() => grad(x));
    assert.ok(shipped.kernelNames.includes("Tile"), `ran ${kernels}`);
    tf.dispose(shipped.result as tf.Tensor);
  } finally {
    installWasmKernels();
  }
  tf.dispose([x, mean, variance, offset, scale]);
});

Deno.test("conv gradients leave no tensors", async () => {
  await useWasmWithKernels();
  const x = tf.tensor4d(values(2 * 9 * 7 * 3, 30), [2, 9, 7, 3]);
  const filter = tf.tensor4d(values(3 * 3 * 3 * 4, 31), [3, 3, 3, 4]);
  const offset = tf.tensor1d([0, 1, 0, 1]);
  const scale = tf.tensor1d([1, 2, 3, 4]);
  const loss = (input: tf.Tensor4D, f: tf.Tensor4D) => {
    const y = tf.conv2d(input, f, 2, "same");
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    return tf.sum(tf.batchNorm(y, mean, variance, offset, scale));
  };
  const gradients = tf.grads(loss as (...args: tf.Tensor[]) => tf.Tensor);

  tf.dispose(gradients([x, filter]));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    tf.dispose(gradients([x, filter]));
  }
  assert.equal(tf.memory().numTensors, before);

  // IS_TEST makes the engine count backend data ids around each kernel.
  tf.env().set("IS_TEST", true);
  try {
    tf.dispose(gradients([x, filter]));
  } finally {
    tf.env().set("IS_TEST", false);
  }
  tf.dispose([x, filter, offset, scale]);
});

/** Variables of conv, batch norm, ReLU, conv s2, mean and dense layers. */
const NET_SHAPES: Record<string, number[]> = {
  conv1: [3, 3, 3, 8],
  gamma: [8],
  beta: [8],
  conv2: [3, 3, 8, 16],
  dense: [16, 5],
  bias: [5],
};
const NET_INPUT = [4, 11, 9, 3];

function networkGradients(): Record<string, Float32Array> {
  const variables: Record<string, tf.Variable> = {};
  let seed = 40;
  for (const [name, shape] of Object.entries(NET_SHAPES)) {
    const init = tf.tensor(values(sizeOf(shape), seed++), shape);
    variables[name] = tf.variable(init, true, `net_${name}`);
    init.dispose();
  }
  const input = tf.tensor4d(
    values(sizeOf(NET_INPUT), 50),
    NET_INPUT as [number, number, number, number],
  );
  const labels = tf.oneHot(tf.tensor1d([0, 3, 1, 4], "int32"), 5);

  const { grads, value } = tf.variableGrads(() => {
    const v = variables;
    const h1 = tf.conv2d(input, v.conv1 as tf.Tensor4D, 1, "same");
    const { mean, variance } = tf.moments(h1, [0, 1, 2]);
    const normed = tf.batchNorm(h1, mean, variance, v.beta, v.gamma, 1e-3);
    const activated = tf.relu(normed) as tf.Tensor4D;
    const h2 = tf.conv2d(activated, v.conv2 as tf.Tensor4D, 2, "same");
    const pooled = tf.mean(h2, [1, 2]);
    const logits = tf.add(tf.matMul(pooled, v.dense as tf.Tensor2D), v.bias);
    return tf.losses.softmaxCrossEntropy(labels, logits);
  }, Object.values(variables));

  const out: Record<string, Float32Array> = {};
  for (const [name, variable] of Object.entries(variables)) {
    out[name] = grads[variable.name].dataSync() as Float32Array;
  }
  tf.dispose([value, input, labels, ...Object.values(grads)]);
  tf.dispose(Object.values(variables));
  return out;
}

Deno.test("network gradients match cpu", async () => {
  await tf.setBackend("cpu");
  const ref = networkGradients();
  await useWasmWithKernels();
  const ours = networkGradients();
  for (const name of Object.keys(NET_SHAPES)) {
    assertClose(name, ours[name], ref[name], NETWORK_TOLERANCE);
  }
});

Deno.test("installWasmKernels is idempotent", async () => {
  // Start the backend first, so that uninstalling must bind the restored
  // kernel itself.
  await useWasmWithKernels();
  const filterKernel = tf.getKernel("Conv2DBackpropFilter", "wasm");
  const inputKernel = tf.getKernel("Conv2DBackpropInput", "wasm");
  installWasmKernels();
  assert.equal(tf.getKernel("Conv2DBackpropFilter", "wasm"), filterKernel);
  assert.equal(tf.getKernel("Conv2DBackpropInput", "wasm"), inputKernel);
  assert.ok(wasmKernelsInstalled());

  uninstallWasmKernels();
  assert.ok(!wasmKernelsInstalled());
  assert.equal(tf.getKernel("Conv2DBackpropFilter", "wasm"), undefined);
  const shipped = tf.getKernel("Conv2DBackpropInput", "wasm");
  assert.notEqual(shipped, inputKernel);
  assert.ok(shipped !== undefined, "shipped kernel not restored");
  // The restored kernel must run: 3x3 ones over 3x3 ones, 2 channels.
  const dy = tf.ones([1, 3, 3, 2]) as tf.Tensor4D;
  const filter = tf.ones([3, 3, 1, 2]) as tf.Tensor4D;
  const dx = tf.conv2dTranspose(dy, filter, [1, 3, 3, 1], 1, "same");
  const expected = [8, 12, 8, 12, 18, 12, 8, 12, 8];
  assert.deepEqual(Array.from(await dx.data()), expected);
  tf.dispose([dy, filter, dx]);

  installWasmKernels();
  assert.ok(wasmKernelsInstalled());
  await tf.setBackend("wasm");
});
