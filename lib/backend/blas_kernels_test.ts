import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import assert from "node:assert/strict";
import { createStrategy } from "../balance/registry.ts";
import { loadEmbeddedDigits } from "../data/embedded.ts";
import { batchNormTraining } from "../models/batch_norm.ts";
import { AudioVisualModel } from "../models/model.ts";
import { Trainer } from "../train/trainer.ts";
import { assertRelativeError } from "../_testing.ts";
import { setChunkFloats } from "./_blas_conv.ts";
import { loadOneDnn } from "./_onednn.ts";
import { loadOpenBlas } from "./_openblas.ts";
import { CONV_CASES, type ConvCase, sizeOf, values } from "./_conv_testing.ts";
import {
  blasKernelsInstalled,
  type ConvolutionLibrary,
  installBlasKernels,
  uninstallBlasKernels,
} from "./blas_kernels.ts";
import { setupBackend } from "./select.ts";

// Maximum |ours - cpu| / max |cpu| for one kernel in float32.
const KERNEL_TOLERANCE = 1e-5;
// The same for a training step, which chains many kernels.
const STEP_TOLERANCE = 1e-4;
const MISSING_LIBRARY = "/nonexistent/libopenblas.so.0";
const MISSING_DNN_LIBRARY = "/nonexistent/libdnnl.so.2";
// Sends every convolution to OpenBLAS, however small.
const ALL_TO_BLAS = { minOutChannels: 1, minPatchSize: 1 };

const openBlasProblem = (() => {
  const load = loadOpenBlas();
  return "problem" in load ? load.problem : undefined;
})();
const oneDnnProblem = (() => {
  const load = loadOneDnn();
  return "problem" in load ? load.problem : undefined;
})();
// Skipped with the reason printed where a library or --allow-ffi is
// missing; with CI=true the tests run and fail instead, because CI
// installs libopenblas0-pthread and libdnnl2 and the test runner grants
// --allow-ffi.
const requireLibraries = Deno.env.get("CI") === "true";
const skip = openBlasProblem !== undefined && !requireLibraries;
if (skip) {
  console.warn(`skip: OpenBLAS kernel tests: ${openBlasProblem}`);
}
const skipOneDnn = oneDnnProblem !== undefined && !requireLibraries;
if (skipOneDnn) {
  console.warn(`skip: oneDNN kernel tests: ${oneDnnProblem}`);
}

function checkOpenBlas(): void {
  if (openBlasProblem !== undefined) {
    throw new Error(`OpenBLAS is required with CI=true: ${openBlasProblem}`);
  }
}

function checkOneDnn(): void {
  if (oneDnnProblem !== undefined) {
    throw new Error(`oneDNN is required with CI=true: ${oneDnnProblem}`);
  }
}

/** The convolution libraries, with their skip flags and checks. */
const LIBRARIES: {
  name: Exclude<ConvolutionLibrary, "auto">;
  ignore: boolean;
  check: () => void;
}[] = [
  { name: "openblas", ignore: skip, check: checkOpenBlas },
  { name: "onednn", ignore: skipOneDnn, check: checkOneDnn },
];

/** Registers one test per library, named "<library> <name>". */
function testEachLibrary(
  name: string,
  fn: (convolutions: ConvolutionLibrary) => Promise<void>,
): void {
  for (const library of LIBRARIES) {
    Deno.test({
      name: `${library.name} ${name}`,
      ignore: library.ignore,
      fn: async () => {
        library.check();
        await fn(library.name);
      },
    });
  }
}

// Cases beyond the shared table: stride 1 with numeric and explicit pads
// (one wider than the filter), and batch 1 with 1x1 and 7x7 filters.
const CASES: ConvCase[] = [
  ...CONV_CASES,
  {
    name: "1x1 s1 batch 1",
    x: [1, 9, 7, 3],
    filter: [1, 1, 3, 5],
    strides: 1,
    pad: "same",
  },
  {
    name: "7x7 s1 batch 1",
    x: [1, 11, 13, 2],
    filter: [7, 7, 2, 3],
    strides: 1,
    pad: "same",
  },
  {
    name: "numeric pad 2 s1",
    x: [1, 6, 5, 3],
    filter: [3, 3, 3, 2],
    strides: 1,
    pad: 2,
  },
  {
    name: "explicit pads s1",
    x: [2, 9, 7, 3],
    filter: [3, 3, 3, 5],
    strides: 1,
    pad: [[0, 0], [0, 2], [2, 1], [0, 0]],
  },
  {
    // Padding wider than the filter: the stride-1 input gradient cannot be
    // a convolution of dy and goes through col2im.
    name: "pad beyond the filter s1",
    x: [2, 5, 6, 3],
    filter: [2, 2, 3, 4],
    strides: 1,
    pad: [[0, 0], [3, 0], [0, 2], [0, 0]],
  },
];

/** Runs the three kernels of one case on the active backend. */
function runKernels(c: ConvCase): Record<string, Float32Array> {
  const x = tf.tensor4d(values(sizeOf(c.x), 1), c.x);
  const filter = tf.tensor4d(values(sizeOf(c.filter), 2), c.filter);
  const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC" };
  const y = tf.engine().runKernel(tf.Conv2D, { x, filter }, {
    ...attrs,
    dilations: 1,
  }) as tf.Tensor4D;
  const dy = tf.tensor4d(values(y.size, 3), y.shape);
  const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
    ...attrs,
    filterShape: c.filter,
  }) as tf.Tensor;
  const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, {
    ...attrs,
    inputShape: c.x,
  }) as tf.Tensor;
  const out = {
    y: y.dataSync() as Float32Array,
    dw: dw.dataSync() as Float32Array,
    dx: dx.dataSync() as Float32Array,
  };
  tf.dispose([x, filter, y, dy, dw, dx]);
  return out;
}

async function onBlas<T>(
  convolutions: ConvolutionLibrary,
  f: () => T,
): Promise<T> {
  const info = installBlasKernels({ ...ALL_TO_BLAS, convolutions });
  assert.equal(info.used, true, info.reason);
  if (convolutions !== "auto") assert.equal(info.convolutions, convolutions);
  await tf.setBackend("wasm");
  try {
    return f();
  } finally {
    uninstallBlasKernels();
  }
}

/** Runs `script` in a child Deno with `permissions`, read from stdin. */
async function runScript(
  script: string,
  permissions: string[],
  cwd?: URL,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "--no-prompt", "-"],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend("cpu");
  return f();
}

/** Compares the three kernels of every case with the cpu backend. */
async function checkConvCases(
  convolutions: ConvolutionLibrary,
): Promise<void> {
  for (const c of CASES) {
    const ours = await onBlas(convolutions, () => runKernels(c));
    const reference = await onCpu(() => runKernels(c));
    for (const key of ["y", "dw", "dx"]) {
      assertRelativeError(
        `${c.name} ${key}`,
        ours[key],
        reference[key],
        KERNEL_TOLERANCE,
      );
    }
  }
}

testEachLibrary("convolution kernels match cpu", checkConvCases);

Deno.test({
  name: "OpenBLAS kernels match cpu in chunks",
  ignore: skip,
  fn: async () => {
    checkOpenBlas();
    // 50 floats is one row of a 3x3x3 patch (27) per chunk, and a 7x7
    // patch (98 floats) per chunk of one row.
    const previous = setChunkFloats(50);
    try {
      await checkConvCases("openblas");
    } finally {
      setChunkFloats(previous);
    }
  },
});

interface PoolCase {
  name: string;
  x: [number, number, number, number];
  filterSize: number;
  strides: number;
  pad: "same" | "valid" | number;
}

const POOL_CASES: PoolCase[] = [
  {
    name: "3x3 s2 same",
    x: [2, 17, 14, 5],
    filterSize: 3,
    strides: 2,
    pad: "same",
  },
  {
    name: "3x3 s1 same",
    x: [1, 7, 9, 3],
    filterSize: 3,
    strides: 1,
    pad: "same",
  },
  {
    name: "2x2 s2 valid",
    x: [3, 8, 9, 4],
    filterSize: 2,
    strides: 2,
    pad: "valid",
  },
  { name: "3x3 s2 pad 1", x: [1, 9, 6, 2], filterSize: 3, strides: 2, pad: 1 },
];

/**
 * Runs MaxPool and MaxPoolGrad on the active backend for x = relu(values),
 * so that windows of zeros tie, as after the ImageNet stem's ReLU. With
 * `copyOutput`, the gradient gets a copy of the pool's output, which
 * oneDNN's kernel has no workspace for, so the JavaScript kernel runs.
 */
function runPool(
  c: PoolCase,
  x = tf.relu(tf.tensor4d(values(sizeOf(c.x), 4), c.x)),
  copyOutput = false,
): { y: Float32Array; dx: Float32Array } {
  const attrs = { filterSize: c.filterSize, strides: c.strides, pad: c.pad };
  const y = tf.maxPool(x as tf.Tensor4D, c.filterSize, c.strides, c.pad);
  const output = copyOutput ? tf.add(y, 0) : y;
  const dy = tf.tensor4d(values(y.size, 5), y.shape);
  const dx = tf.engine().runKernel(
    tf.MaxPoolGrad,
    { dy, input: x, output },
    attrs,
  ) as tf.Tensor;
  const out = {
    y: y.dataSync() as Float32Array,
    dx: dx.dataSync() as Float32Array,
  };
  tf.dispose([x, y, output, dy, dx]);
  return out;
}

testEachLibrary("max pool and its gradient match cpu", async (library) => {
  for (const copyOutput of [false, true]) {
    for (const c of POOL_CASES) {
      const name = `${c.name}${copyOutput ? ", copied output" : ""}`;
      const ours = await onBlas(
        library,
        () => runPool(c, undefined, copyOutput),
      );
      const reference = await onCpu(() => runPool(c));
      assertRelativeError(`${name} y`, ours.y, reference.y, 0);
      assertRelativeError(
        `${name} dx`,
        ours.dx,
        reference.dx,
        KERNEL_TOLERANCE,
      );
    }
  }
});

testEachLibrary("max-pool gradient picks the first tie", async (library) => {
  // One 2x2 window holding 3, 7, 7, 1: the gradient goes to the first 7.
  const c: PoolCase = {
    name: "tie",
    x: [1, 2, 2, 1],
    filterSize: 2,
    strides: 2,
    pad: "valid",
  };
  for (const copyOutput of [false, true]) {
    const { dx } = await onBlas(
      library,
      () => runPool(c, tf.tensor4d([3, 7, 7, 1], c.x), copyOutput),
    );
    assert.deepEqual([...dx], [0, values(1, 5)[0], 0, 0]);
  }
});

/**
 * Runs training-mode batch norm and its gradients with respect to x, gamma
 * and beta on the active backend, for loss = sum(y * w).
 */
function runBatchNorm(shape: [number, number, number, number]) {
  const channels = shape[3];
  const x = tf.tensor4d(values(sizeOf(shape), 6), shape);
  // An offset and a spread per channel, as after a convolution.
  const shifted = tf.tidy(() =>
    tf.add(tf.mul(x, tf.range(1, channels + 1)), 3)
  );
  const w = tf.tensor4d(values(sizeOf(shape), 7), shape);
  const gamma = tf.tensor1d(values(channels, 8));
  const beta = tf.tensor1d(values(channels, 9));
  let moments: Float32Array[] = [];
  const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const y = batchNormTraining(
      a as tf.Tensor4D,
      g as tf.Tensor1D,
      b as tf.Tensor1D,
      1e-5,
      (m) => {
        moments = [m.mean, m.variance].map((t) => t.dataSync() as Float32Array);
        tf.dispose([m.mean, m.variance]);
      },
    );
    return tf.sum(tf.mul(y, w));
  };
  const { value, grads } = tf.valueAndGrads(loss)([shifted, gamma, beta]);
  const y = batchNormTraining(shifted as tf.Tensor4D, gamma, beta, 1e-5);
  const out = {
    y: y.dataSync() as Float32Array,
    loss: value.dataSync() as Float32Array,
    mean: moments[0],
    variance: moments[1],
    dx: grads[0].dataSync() as Float32Array,
    dGamma: grads[1].dataSync() as Float32Array,
    dBeta: grads[2].dataSync() as Float32Array,
  };
  tf.dispose([x, shifted, w, gamma, beta, value, y, ...grads]);
  return out;
}

// On OpenBLAS the batch-norm kernels are JavaScript; on oneDNN they are
// its primitives.
testEachLibrary("fused batch norm matches cpu", checkBatchNorm);

async function checkBatchNorm(
  convolutions: ConvolutionLibrary,
): Promise<void> {
  // tf.memory() below needs an initialized backend, and when this test
  // runs alone (--filter), no earlier test has set one.
  await tf.ready();
  for (
    const shape of [[2, 5, 7, 3], [4, 16, 16, 32], [1, 1, 1, 4]] as const
  ) {
    const before = tf.memory().numTensors;
    const ours = await onBlas(convolutions, () => {
      assert.notEqual(
        tf.getKernel("CamdropBatchNormTrain", "wasm"),
        undefined,
      );
      return runBatchNorm([...shape]);
    });
    const reference = await onCpu(() => runBatchNorm([...shape]));
    for (const key of Object.keys(reference) as (keyof typeof reference)[]) {
      assertRelativeError(
        `${shape} ${key}`,
        ours[key],
        reference[key],
        KERNEL_TOLERANCE,
      );
    }
    assert.equal(tf.memory().numTensors, before, "tensors left behind");
  }
}

Deno.test({
  name: "fused batch norm of an empty batch",
  ignore: skip,
  fn: async () => {
    checkOpenBlas();
    const result = await onBlas("auto", () => {
      // Leaves stale values in freed heap blocks of the outputs' size, so
      // that an output the kernel does not write is unlikely to read 0.
      tf.dispose(Array.from({ length: 8 }, () => tf.fill([3], 7)));
      const x = tf.zeros([0, 2, 2, 3]);
      const gamma = tf.ones([3]);
      const beta = tf.zeros([3]);
      let moments: Float32Array[] = [];
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        batchNormTraining(
          a as tf.Tensor4D,
          g as tf.Tensor1D,
          b as tf.Tensor1D,
          1e-5,
          (m) => {
            moments = [m.mean, m.variance].map((t) =>
              t.dataSync() as Float32Array
            );
            tf.dispose([m.mean, m.variance]);
          },
        )
      )([x, gamma, beta]);
      const out = {
        mean: moments[0],
        variance: moments[1],
        dGamma: grads[1].dataSync() as Float32Array,
        dBeta: grads[2].dataSync() as Float32Array,
      };
      tf.dispose([x, gamma, beta, ...grads]);
      return out;
    });
    // The cpu backend's composed form gives 0 for each: tf.mean and tf.sum
    // of an empty tensor.
    assert.deepEqual([...result.mean], [0, 0, 0], "mean");
    assert.deepEqual([...result.variance], [0, 0, 0], "variance");
    assert.deepEqual([...result.dGamma], [0, 0, 0], "dGamma");
    assert.deepEqual([...result.dBeta], [0, 0, 0], "dBeta");
  },
});

/** Counts the elements whose float32 bits differ. */
function countDifferences(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "lengths differ");
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) count++;
  }
  return count;
}

testEachLibrary("convolution kernels are deterministic", checkDeterminism);

async function checkDeterminism(
  convolutions: ConvolutionLibrary,
): Promise<void> {
  // Large enough that the library splits the work over its threads.
  const c: ConvCase = {
    name: "stage one",
    x: [4, 28, 28, 64],
    filter: [3, 3, 64, 64],
    strides: 1,
    pad: "same",
  };
  const runs: Record<string, Float32Array>[] = [];
  for (const threads of [2, 2, 1]) {
    installBlasKernels({ ...ALL_TO_BLAS, threads, convolutions });
    await tf.setBackend("wasm");
    runs.push(runKernels(c));
    uninstallBlasKernels();
  }
  for (const key of ["y", "dw", "dx"]) {
    assert.equal(
      countDifferences(runs[1][key], runs[0][key]),
      0,
      `${key}: elements that differ between two runs on 2 threads`,
    );
    // Both libraries may sum in another order on 1 thread than on 2,
    // so the bits may differ but not the values beyond rounding.
    assertRelativeError(
      `${key}: 1 thread against 2`,
      runs[2][key],
      runs[0][key],
      KERNEL_TOLERANCE,
    );
  }
}

Deno.test({
  name: "OpenBLAS kernels leave small convs to XNNPACK",
  ignore: skip,
  fn: async () => {
    checkOpenBlas();
    // 4 output channels are under the default threshold of 16, so the
    // shipped kernel runs and the bits equal the plain path's.
    const x = tf.tensor4d(values(2 * 9 * 9 * 8, 1), [2, 9, 9, 8]);
    const filter = tf.tensor4d(values(3 * 3 * 8 * 4, 2), [3, 3, 8, 4]);
    const run = () =>
      tf.conv2d(x, filter, 1, "same").dataSync() as Float32Array;
    installBlasKernels({ convolutions: "openblas" });
    await tf.setBackend("wasm");
    const ours = run();
    uninstallBlasKernels();
    const plain = run();
    assert.equal(countDifferences(ours, plain), 0);
    tf.dispose([x, filter]);
  },
});

testEachLibrary("kernels fall back for dilations", checkDilationFallback);

async function checkDilationFallback(
  convolutions: ConvolutionLibrary,
): Promise<void> {
  const x = tf.tensor4d(values(2 * 9 * 9 * 3, 1), [2, 9, 9, 3]);
  const filter = tf.tensor4d(values(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
  const run = () =>
    tf.conv2d(x, filter, 1, "same", "NHWC", 2).dataSync() as Float32Array;
  const ours = await onBlas(convolutions, run);
  const reference = await onCpu(run);
  assertRelativeError("dilation 2", ours, reference, KERNEL_TOLERANCE);
  tf.dispose([x, filter]);
}

async function loadDigits() {
  return await loadEmbeddedDigits({ trainSize: 8, valSize: 8, testSize: 8 });
}

/** One training step of a small model; returns the loss and weights. */
async function trainOneStep(
  data: Awaited<ReturnType<typeof loadDigits>>,
): Promise<{ loss: number; weights: Map<string, Float32Array> }> {
  const model = new AudioVisualModel({
    numClasses: 10,
    width: 4,
    audioStem: "imagenet",
    visualStem: "imagenet",
    visualChannels: 1,
    seed: 3,
  });
  const trainer = new Trainer(model, createStrategy("naive"), data, {
    epochs: 1,
    batchSize: 8,
    lr: 0.1,
    seed: 3,
  });
  const [batch] = data.batches("train", {
    batchSize: 8,
    seed: 3,
    epoch: 0,
    training: true,
  });
  const result = await trainer.trainStep(batch, 0, 0, 0.1);
  const weights = new Map<string, Float32Array>();
  for (const [name, tensor] of model.store.trainable) {
    weights.set(name, tensor.dataSync() as Float32Array);
  }
  trainer.dispose();
  model.dispose();
  return { loss: result.loss, weights };
}

testEachLibrary("training step matches wasm", checkTrainingStep);

async function checkTrainingStep(
  convolutions: ConvolutionLibrary,
): Promise<void> {
  const data = await loadDigits();
  const blas = await setupBackend("wasm", {
    blas: { ...ALL_TO_BLAS, convolutions },
  });
  assert.equal(blas.blas.used, true, blas.blas.reason);
  assert.equal(blas.blas.convolutions, convolutions);
  const ours = await trainOneStep(data);
  const again = await trainOneStep(data);

  const plain = await setupBackend("wasm", { blas: false });
  assert.equal(plain.blas.used, false);
  assert.equal(blasKernelsInstalled(), false);
  const reference = await trainOneStep(data);

  assert.ok(Number.isFinite(ours.loss), `loss ${ours.loss}`);
  assertRelativeError("loss", [ours.loss], [reference.loss], STEP_TOLERANCE);
  assert.equal(ours.weights.size, reference.weights.size);
  for (const [name, weights] of reference.weights) {
    assertRelativeError(
      name,
      ours.weights.get(name)!,
      weights,
      STEP_TOLERANCE,
    );
  }
  // Same seed on the BLAS path: bit-identical loss and weights.
  assert.equal(again.loss, ours.loss);
  for (const [name, weights] of ours.weights) {
    assert.equal(
      countDifferences(again.weights.get(name)!, weights),
      0,
      `${name}: elements that differ between two runs`,
    );
  }
}

// x and dy pairs that cover both signs of zero, NaN and the infinities.
const RELU_X = [2, -3, 0, -0, NaN, Infinity, -Infinity, 0.5, -1, 0];
const RELU_DY = [1.5, 2, -4, 3, 5, -2, 7, Infinity, -Infinity, NaN];

/** Runs the ReLU gradient of sum(relu(x) * dy) on the active backend. */
function runReluGrad(): Float32Array {
  const x = tf.tensor1d(RELU_X);
  const dy = tf.tensor1d(RELU_DY);
  const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dy)))(x);
  const out = dx.dataSync() as Float32Array;
  tf.dispose([x, dy, dx]);
  return out;
}

testEachLibrary("ReLU gradient matches tfjs's formula", async (library) => {
  const ours = await onBlas(library, () => {
    assert.notEqual(tf.getKernel("CamdropReluGrad", "wasm"), undefined);
    return runReluGrad();
  });
  const reference = await onCpu(runReluGrad);
  RELU_X.forEach((x, i) => {
    // oneDNN passes dy through where x is NaN (documented); tfjs and the
    // JavaScript kernel give NaN.
    const expected = library === "onednn" && Number.isNaN(x)
      ? Math.fround(RELU_DY[i])
      : reference[i];
    assert.ok(
      Object.is(ours[i], expected),
      `x ${x}, dy ${RELU_DY[i]}: got ${ours[i]}, expected ${expected}`,
    );
  });
});

testEachLibrary("kernels follow dimRoundingMode ceil", async (library) => {
  // A numeric pad with "ceil" adds an output row that reads past the
  // padding; oneDNN needs a larger far padding for it. Only the forward
  // passes: tfjs's conv and max-pool gradients drop dimRoundingMode, on
  // every backend.
  const run = () => {
    const x = tf.tensor4d(values(2 * 7 * 6 * 3, 1), [2, 7, 6, 3]);
    const w = tf.tensor4d(values(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
    const y = tf.conv2d(x, w, 2, 1, "NHWC", 1, "ceil");
    const pooled = tf.maxPool(x, 3, 2, 1, "ceil");
    const out = [y, pooled].map((t) => t.dataSync() as Float32Array);
    tf.dispose([x, w, y, pooled]);
    return out;
  };
  const ours = await onBlas(library, run);
  const reference = await onCpu(run);
  assertRelativeError("conv", ours[0], reference[0], KERNEL_TOLERANCE);
  // The OpenBLAS path keeps the shipped MaxPool, which ignores "ceil"
  // (tfjs-backend-wasm 4.22); only oneDNN's pool is ours.
  if (library === "onednn") {
    assertRelativeError("max pool", ours[1], reference[1], 0);
  }
});

testEachLibrary("threads return to the default", (library) => {
  // The default of both libraries: their variable, else every core.
  const variable = library === "onednn"
    ? "OMP_NUM_THREADS"
    : "OPENBLAS_NUM_THREADS";
  const expected = Number(
    Deno.env.get(variable) ?? navigator.hardwareConcurrency,
  );
  const single = installBlasKernels({ convolutions: library, threads: 1 });
  uninstallBlasKernels();
  const again = installBlasKernels({ convolutions: library });
  uninstallBlasKernels();
  assert.equal(single.threads, 1);
  assert.equal(again.threads, expected);
  return Promise.resolve();
});

Deno.test("BLAS kernels report a missing library", async () => {
  const info = installBlasKernels({
    libraries: [MISSING_LIBRARY],
    convolutions: "openblas",
  });
  assert.equal(info.used, false);
  assert.match(info.reason ?? "", /nonexistent\/libopenblas\.so\.0/);
  assert.equal(blasKernelsInstalled(), false);

  const dnn = installBlasKernels({
    oneDnnLibraries: [MISSING_DNN_LIBRARY],
    convolutions: "onednn",
  });
  assert.equal(dnn.used, false);
  assert.match(dnn.reason ?? "", /nonexistent\/libdnnl\.so\.2/);
  assert.match(dnn.reason ?? "", /apt-get install libdnnl2/);
  assert.equal(blasKernelsInstalled(), false);

  const warnings: string[] = [];
  const backend = await setupBackend("wasm", {
    blas: {
      libraries: [MISSING_LIBRARY],
      oneDnnLibraries: [MISSING_DNN_LIBRARY],
    },
    onWarning: (message) => warnings.push(message),
  });
  assert.equal(backend.name, "wasm");
  assert.equal(backend.blas.used, false);
  // "auto" names both libraries.
  assert.match(backend.blas.reason ?? "", /oneDNN could not be loaded/);
  assert.match(backend.blas.reason ?? "", /OpenBLAS could not be loaded/);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /plain wasm kernels run instead/);

  // The plain kernels still train: the shipped Conv2D and our gradients.
  const x = tf.tensor4d(values(2 * 5 * 5 * 3, 1), [2, 5, 5, 3]);
  const filter = tf.variable(tf.tensor4d(values(27 * 2, 2), [3, 3, 3, 2]));
  const grad = tf.grad((f) =>
    tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, "same"))
  );
  const dw = grad(filter);
  assert.deepEqual(dw.shape, [3, 3, 3, 2]);
  assert.ok(Number.isFinite(tf.sum(dw).dataSync()[0]));
  tf.dispose([x, filter, dw]);
});

Deno.test("BLAS kernels without FFI permission", async () => {
  // A child Deno without --allow-ffi sets up the wasm backend.
  const root = new URL("../..", import.meta.url);
  const select = new URL("./select.ts", import.meta.url).href;
  const script = `
    const { setupBackend } = await import(${JSON.stringify(select)});
    const warnings = [];
    const info = await setupBackend("wasm", {
      onWarning: (message) => warnings.push(message),
    });
    console.log(JSON.stringify({ name: info.name, blas: info.blas, warnings }));
  `;
  const output = await runScript(
    script,
    ["--allow-read", "--allow-env"],
    root,
  );
  assert.equal(output.code, 0, output.stderr);
  const lines = output.stdout.trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]);
  assert.equal(result.name, "wasm");
  assert.equal(result.blas.used, false);
  assert.match(result.blas.reason, /--allow-ffi/);
  assert.equal(result.warnings.length, 1, result.warnings.join("\n"));
});

Deno.test("BLAS kernels can be turned off", async () => {
  const warnings: string[] = [];
  const backend = await setupBackend("wasm", {
    blas: false,
    onWarning: (message) => warnings.push(message),
  });
  assert.equal(backend.blas.used, false);
  assert.match(backend.blas.reason ?? "", /turned off/);
  assert.deepEqual(warnings, []);
  assert.equal(blasKernelsInstalled(), false);
});

// libdnnl marks itself undeletable when it loads first, through C++
// symbols that must stay unique. Mesa's Vulkan driver (the WebGPU tests)
// loads libLLVM, which defines the same symbols, and then libdnnl can be
// unloaded. The test loads libLLVM globally first, as Mesa does.
const LLVM_LIBRARIES = ["libLLVM-15.so.1", "libLLVM-14.so.1"];

Deno.test({
  name: "oneDNN stays loaded after dlclose",
  ignore: skipOneDnn,
  fn: async () => {
    checkOneDnn();
    // A child process opens and closes libdnnl through glibc itself, so
    // that the last close unmaps it unless keepLoaded pinned it.
    const onednn = new URL("./_onednn.ts", import.meta.url).href;
    const ffi = new URL("./_ffi.ts", import.meta.url).href;
    const script = `
      const { ONEDNN_LIBRARIES } = await import(${JSON.stringify(onednn)});
      const { keepLoaded } = await import(${JSON.stringify(ffi)});
      const RTLD_NOW = 2;
      const RTLD_GLOBAL = 0x100;
      const libc = Deno.dlopen("libc.so.6", {
        dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
        dlclose: { parameters: ["pointer"], result: "i32" },
      }).symbols;
      const cString = (text) => new TextEncoder().encode(text + "\\0");
      const llvm = ${JSON.stringify(LLVM_LIBRARIES)}.some((name) =>
        libc.dlopen(cString(name), RTLD_NOW | RTLD_GLOBAL) !== null
      );
      const path = ONEDNN_LIBRARIES[0];
      const mapped = () =>
        Deno.readTextFileSync("/proc/self/maps").includes("libdnnl.so");
      const before = mapped();
      libc.dlclose(libc.dlopen(cString(path), RTLD_NOW));
      const afterClose = mapped();
      const handle = libc.dlopen(cString(path), RTLD_NOW);
      const pinned = keepLoaded(path);
      libc.dlclose(handle);
      const afterPin = mapped();
      console.log(JSON.stringify({ llvm, before, afterClose, pinned, afterPin }));
    `;
    // /proc/self/maps needs --allow-all in Deno 2.9.
    const output = await runScript(script, ["--allow-all"]);
    assert.equal(output.code, 0, output.stderr);
    const steps = JSON.parse(output.stdout.trim());
    assert.equal(steps.before, false, "mapped before any dlopen");
    if (steps.llvm) {
      assert.equal(steps.afterClose, false, "still mapped after dlclose");
    } else if (requireLibraries) {
      throw new Error(
        `none of ${LLVM_LIBRARIES.join(", ")} loaded; CI installs libLLVM ` +
          "with mesa-vulkan-drivers",
      );
    } else {
      console.warn(
        "oneDNN unload test: no libLLVM, so only the pinned half runs",
      );
    }
    assert.equal(steps.pinned, true, "keepLoaded failed");
    assert.equal(
      steps.afterPin,
      true,
      "unmapped after dlclose despite the pin",
    );
  },
});

Deno.test("BLAS kernels reject an unknown convolution library", () => {
  assert.throws(
    () =>
      installBlasKernels({
        convolutions: "mkl" as ConvolutionLibrary,
      }),
    /unknown convolution library \(convolutions 'mkl'\): expected one of auto, onednn, openblas/,
  );
  assert.equal(blasKernelsInstalled(), false);
});

Deno.test("BLAS info on the cpu backend", async () => {
  const backend = await setupBackend("cpu");
  assert.equal(backend.blas.used, false);
  assert.match(backend.blas.reason ?? "", /'cpu', not wasm/);
});
