/**
 * Optional OpenBLAS convolution kernels for the tfjs wasm backend.
 * {@linkcode installBlasKernels} replaces `Conv2D`, `Conv2DBackpropFilter`
 * and `Conv2DBackpropInput` with sgemm calls of OpenBLAS (loaded through
 * `Deno.dlopen`) that read and write the wasm heap in place, on OpenBLAS's
 * own thread pool. The wasm backend itself stays single-threaded.
 *
 * The kernels need OpenBLAS (Debian: libopenblas0-pthread) and Deno's FFI
 * permission (`--allow-ffi`). Without either, installation registers
 * nothing and returns the reason, so the plain wasm kernels stay in use.
 *
 * Convolutions with fewer than 16 output channels or a patch
 * (kh * kw * Ci) under 32 floats (both options), and calls with NCHW,
 * non-float32 data or dilations other than 1, go to the kernels that were
 * registered before.
 *
 * The same switch also replaces `MaxPoolGrad` with a JavaScript kernel
 * (no BLAS involved) that was 2-3 times as fast as the shipped one on the
 * ImageNet stem's pool. Where a window's maximum occurs twice, it sends the
 * gradient to the first, like the cpu backend. The shipped kernel picks
 * another, which matters only at tied zeros after ReLU, whose own gradient
 * is 0. The kernel belongs to this path so that the plain path keeps its
 * results.
 *
 * Limitations: `FusedConv2D` keeps the
 * shipped XNNPACK kernel. `--allow-ffi` lifts Deno's sandbox for the
 * process, because native code can do anything.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  conv2dFilterGradGemm,
  conv2dGemm,
  conv2dInputGradGemm,
  type ConvGeometry,
  type Memory,
} from "./_blas_conv.ts";
import { convInfo } from "./_conv_grads.ts";
import { maxPoolGradInto } from "./_max_pool_grad.ts";
import {
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
  batchNormBackward,
  batchNormForward,
} from "./_batch_norm_fused.ts";
import {
  loadOpenBlas,
  type OpenBlas,
  OPENBLAS_LIBRARIES,
} from "./_openblas.ts";

const BACKEND = "wasm";
const KERNEL_NAMES = [
  tf.Conv2D,
  tf.Conv2DBackpropFilter,
  tf.Conv2DBackpropInput,
  tf.MaxPoolGrad,
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
] as const;

/** Options of {@linkcode installBlasKernels}. */
export interface BlasKernelOptions {
  /**
   * Library names or paths for `Deno.dlopen`, tried in order.
   * @default OPENBLAS_LIBRARIES ("libopenblas.so.0", "libopenblas.so")
   */
  libraries?: readonly string[];
  /**
   * Threads of OpenBLAS's pool, for every user of the library in this
   * process. Results are bit-identical from run to run at a fixed thread
   * count, but OpenBLAS 0.3.21 sums in another order on 1 thread than on
   * 2, so the last bits depend on it.
   * @default OpenBLAS's own choice: OPENBLAS_NUM_THREADS, else all cores
   */
  threads?: number;
  /**
   * Convolutions with fewer output channels use the plain kernels.
   * @default 16
   */
  minOutChannels?: number;
  /**
   * Convolutions whose patch (kh * kw * Ci) is smaller use the plain
   * kernels.
   * @default 32
   */
  minPatchSize?: number;
}

/** Whether the BLAS kernels are in use, and which library they call. */
export interface BlasInfo {
  /** True when the three convolution kernels run on OpenBLAS. */
  used: boolean;
  /** The library that was opened. */
  library?: string;
  /** OpenBLAS's build description (openblas_get_config). */
  config?: string;
  /** Threads of OpenBLAS's pool. */
  threads?: number;
  /** Reason the kernels are not in use, when they are not. */
  reason?: string;
}

/** The subset of tfjs-backend-wasm 4.22's BackendWasm that the kernels use. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

interface InstalledState {
  blas: OpenBlas;
  info: BlasInfo;
  /** The kernels registered before, restored on uninstall. */
  previous: Map<string, tf.KernelConfig | undefined>;
}

let installed: InstalledState | undefined;

/** Conv2D attributes (tfjs-core 4.22 Conv2DAttrs and its gradients'). */
interface ConvAttrs {
  strides: number | [number, number];
  pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function supported(attrs: ConvAttrs, inputs: tf.TensorInfo[]): boolean {
  const dilations = attrs.dilations ?? 1;
  const ones = typeof dilations === "number"
    ? dilations === 1
    : dilations[0] === 1 && dilations[1] === 1;
  return (attrs.dataFormat ?? "NHWC") === "NHWC" && ones &&
    inputs.every((input) => input.dtype === "float32");
}

/**
 * Default smallest output channel count and patch size (kh * kw * Ci) that
 * go to OpenBLAS. Below them XNNPACK was faster. At batch 16 with 4 or 8
 * channels, or a 7x7 filter over 1 channel into 4, the BLAS kernels took
 * 2-6 times as long. At 16 channels both were about even. Measured on a
 * shared 2-core AMD EPYC, so the thresholds are estimates.
 */
const MIN_OUT_CHANNELS = 16;
const MIN_PATCH_SIZE = 32;

function geometry(
  inputShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
): { geometry: ConvGeometry; outShape: number[] } {
  const info = convInfo(inputShape, filterShape, attrs);
  return { outShape: info.outShape, geometry: geometryOf(info) };
}

/** Picks the fields of {@linkcode ConvGeometry} from a tfjs Conv2DInfo. */
function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batchSize: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Returns the heap as floats; call it after the last allocation. */
function memoryOf(backend: WasmBackend): Memory {
  // The heap's ArrayBuffer is replaced when the heap grows, so the view
  // and its address are taken afresh on every call.
  const bytes = backend.wasm.HEAPU8;
  return {
    floats: new Float32Array(bytes.buffer, 0, bytes.byteLength >>> 2),
    base: Deno.UnsafePointer.of(bytes)!,
  };
}

/** Returns the float index of a tensor's data on the wasm heap. */
function floatOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data === undefined) {
    throw new Error(
      "accelerated wasm kernel: a tensor's data is not on the wasm heap",
    );
  }
  return data.memoryOffset >>> 2;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const info = inputs[name];
  if (info === undefined) {
    throw new Error(`accelerated wasm kernel: input '${name}' is missing`);
  }
  return info;
}

/** Builds the kernel configs that call `blas`, falling back to `previous`. */
function blasKernels(
  blas: OpenBlas,
  previous: Map<string, tf.KernelConfig | undefined>,
  options: BlasKernelOptions,
): tf.KernelConfig[] {
  const minOutChannels = options.minOutChannels ?? MIN_OUT_CHANNELS;
  const minPatchSize = options.minPatchSize ?? MIN_PATCH_SIZE;
  const worthBlas = (g: ConvGeometry) =>
    g.outChannels >= minOutChannels &&
    g.filterHeight * g.filterWidth * g.inChannels >= minPatchSize;

  const fallback = (name: string, args: Parameters<tf.KernelFunc>[0]) => {
    const kernel = previous.get(name);
    if (kernel === undefined) {
      throw new Error(
        `${name} on wasm: these attributes need the plain kernel, and none ` +
          "is registered",
      );
    }
    return kernel.kernelFunc(args);
  };

  const conv2d: tf.KernelFunc = (args) => {
    const x = input(args.inputs, "x");
    const filter = input(args.inputs, "filter");
    const attrs = args.attrs as unknown as ConvAttrs;
    if (!supported(attrs, [x, filter])) return fallback(tf.Conv2D, args);
    const backend = args.backend as unknown as WasmBackend;
    const { geometry: g, outShape } = geometry(x.shape, filter.shape, attrs);
    if (!worthBlas(g)) return fallback(tf.Conv2D, args);
    const out = backend.makeOutput(outShape, "float32");
    if (sizeOf(outShape) > 0) {
      conv2dGemm(
        blas,
        memoryOf(backend),
        g,
        floatOffset(backend, x),
        floatOffset(backend, filter),
        floatOffset(backend, out),
      );
    }
    return out;
  };

  const filterGrad: tf.KernelFunc = (args) => {
    const x = input(args.inputs, "x");
    const dy = input(args.inputs, "dy");
    const attrs = args.attrs as unknown as ConvAttrs & {
      filterShape: number[];
    };
    if (!supported(attrs, [x, dy])) {
      return fallback(tf.Conv2DBackpropFilter, args);
    }

    const backend = args.backend as unknown as WasmBackend;
    const { geometry: g, outShape } = geometry(
      x.shape,
      attrs.filterShape,
      attrs,
    );
    checkShape(tf.Conv2DBackpropFilter, dy.shape, outShape);
    if (!worthBlas(g)) return fallback(tf.Conv2DBackpropFilter, args);

    const out = backend.makeOutput(attrs.filterShape, "float32");
    const memory = memoryOf(backend);
    if (sizeOf(dy.shape) === 0) {
      const start = floatOffset(backend, out);
      memory.floats.fill(0, start, start + sizeOf(out.shape));
    } else if (sizeOf(out.shape) > 0) {
      conv2dFilterGradGemm(
        blas,
        memory,
        g,
        floatOffset(backend, x),
        floatOffset(backend, dy),
        floatOffset(backend, out),
      );
    }
    return out;
  };

  const inputGrad: tf.KernelFunc = (args) => {
    const dy = input(args.inputs, "dy");
    const filter = input(args.inputs, "filter");
    const attrs = args.attrs as unknown as ConvAttrs & {
      inputShape: number[];
    };
    if (!supported(attrs, [dy, filter])) {
      return fallback(tf.Conv2DBackpropInput, args);
    }

    const backend = args.backend as unknown as WasmBackend;
    const { geometry: g, outShape } = geometry(
      attrs.inputShape,
      filter.shape,
      attrs,
    );
    checkShape(tf.Conv2DBackpropInput, dy.shape, outShape);
    if (!worthBlas(g)) return fallback(tf.Conv2DBackpropInput, args);

    const out = backend.makeOutput(attrs.inputShape, "float32");
    const memory = memoryOf(backend);
    if (sizeOf(dy.shape) === 0) {
      const start = floatOffset(backend, out);
      memory.floats.fill(0, start, start + sizeOf(out.shape));
    } else if (sizeOf(out.shape) > 0) {
      conv2dInputGradGemm(
        blas,
        memory,
        g,
        floatOffset(backend, dy),
        floatOffset(backend, filter),
        floatOffset(backend, out),
      );
    }
    return out;
  };

  const maxPoolGrad: tf.KernelFunc = (args) => {
    const dy = input(args.inputs, "dy");
    const x = input(args.inputs, "input");
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    if (x.dtype !== "float32" || dy.dtype !== "float32") {
      return fallback(tf.MaxPoolGrad, args);
    }
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    checkShape(tf.MaxPoolGrad, dy.shape, info.outShape);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(x.shape, "float32");
    if (sizeOf(x.shape) > 0) {
      maxPoolGradInto(
        memoryOf(backend).floats,
        floatOffset(backend, x),
        floatOffset(backend, dy),
        floatOffset(backend, out),
        geometryOf(info),
      );
    }
    return out;
  };

  const functions: Record<string, tf.KernelFunc> = {
    [tf.Conv2D]: conv2d,
    [tf.Conv2DBackpropFilter]: filterGrad,
    [tf.Conv2DBackpropInput]: inputGrad,
    [tf.MaxPoolGrad]: maxPoolGrad,
    [BATCH_NORM_TRAIN]: batchNormTrain,
    [BATCH_NORM_TRAIN_GRAD]: batchNormTrainGrad,
  };
  return KERNEL_NAMES.map((kernelName) => ({
    kernelName,
    backendName: BACKEND,
    kernelFunc: functions[kernelName],
    // The shipped kernel's setup binds its wasm function, which the
    // fallback calls, so it has to run when the backend starts.
    setupFunc: previous.get(kernelName)?.setupFunc,
  }));
}

/** Checks that every input is float32 and that x's last axis matches. */
function checkBatchNormInputs(
  kernelName: string,
  x: tf.TensorInfo,
  channelInputs: tf.TensorInfo[],
): number {
  const channels = x.shape[x.shape.length - 1];
  for (const info of [x, ...channelInputs]) {
    if (info.dtype !== "float32") {
      throw new Error(
        `${kernelName}: expected float32 inputs, got ${info.dtype}`,
      );
    }
  }
  for (const info of channelInputs) {
    if (info.shape.length !== 1 || info.shape[0] !== channels) {
      throw new Error(
        `${kernelName}: a per-channel input has shape [${info.shape}] but ` +
          `the data has ${channels} channels`,
      );
    }
  }
  return channels;
}

const batchNormTrain: tf.KernelFunc = (args) => {
  const x = input(args.inputs, "x");
  const gamma = input(args.inputs, "gamma");
  const beta = input(args.inputs, "beta");
  const { epsilon } = args.attrs as unknown as { epsilon: number };
  const channels = checkBatchNormInputs(BATCH_NORM_TRAIN, x, [gamma, beta]);
  const backend = args.backend as unknown as WasmBackend;
  const y = backend.makeOutput(x.shape, "float32");
  const xHat = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([channels], "float32");
  const variance = backend.makeOutput([channels], "float32");
  const invStd = backend.makeOutput([channels], "float32");
  const pixels = sizeOf(x.shape) / channels;
  batchNormForward(
    memoryOf(backend).floats,
    {
      x: floatOffset(backend, x),
      gamma: floatOffset(backend, gamma),
      beta: floatOffset(backend, beta),
      y: floatOffset(backend, y),
      xHat: floatOffset(backend, xHat),
      mean: floatOffset(backend, mean),
      variance: floatOffset(backend, variance),
      invStd: floatOffset(backend, invStd),
    },
    pixels,
    channels,
    epsilon,
  );
  return [y, xHat, mean, variance, invStd];
};

const batchNormTrainGrad: tf.KernelFunc = (args) => {
  const dy = input(args.inputs, "dy");
  const xHat = input(args.inputs, "xHat");
  const gamma = input(args.inputs, "gamma");
  const invStd = input(args.inputs, "invStd");
  const channels = checkBatchNormInputs(BATCH_NORM_TRAIN_GRAD, dy, [
    gamma,
    invStd,
  ]);
  checkShape(BATCH_NORM_TRAIN_GRAD, dy.shape, xHat.shape);
  const backend = args.backend as unknown as WasmBackend;
  const dx = backend.makeOutput(dy.shape, "float32");
  const dGamma = backend.makeOutput([channels], "float32");
  const dBeta = backend.makeOutput([channels], "float32");
  const pixels = sizeOf(dy.shape) / channels;
  batchNormBackward(
    memoryOf(backend).floats,
    {
      dy: floatOffset(backend, dy),
      xHat: floatOffset(backend, xHat),
      gamma: floatOffset(backend, gamma),
      invStd: floatOffset(backend, invStd),
      dx: floatOffset(backend, dx),
      dGamma: floatOffset(backend, dGamma),
      dBeta: floatOffset(backend, dBeta),
    },
    pixels,
    channels,
  );
  return [dx, dGamma, dBeta];
};

function checkShape(kernelName: string, actual: number[], expected: number[]) {
  if (actual.join(",") !== expected.join(",")) {
    throw new Error(
      `${kernelName}: dy has shape [${actual}] but the forward op ` +
        `implies [${expected}]`,
    );
  }
}

function replaceKernel(config: tf.KernelConfig): void {
  // Unregister first: registerKernel prints a warning on replacement.
  if (tf.getKernel(config.kernelName, BACKEND) != null) {
    tf.unregisterKernel(config.kernelName, BACKEND);
  }
  tf.registerKernel(config);
  // tfjs runs setupFunc only when a backend is set, so a backend that is
  // already running needs it here.
  const backend = tf.findBackend(BACKEND);
  if (backend != null) config.setupFunc?.(backend);
}

/**
 * Replaces the three convolution kernels of the wasm backend with OpenBLAS
 * sgemm calls, when OpenBLAS loads. Call `installWasmKernels` first: the
 * batch-norm gradient comes from there, and the kernels registered now
 * are the ones that calls with unsupported attributes fall back to.
 *
 * Returns the outcome instead of throwing when OpenBLAS or the FFI
 * permission is missing, so that callers can report the fallback. Calling
 * it while installed returns the current state.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { installBlasKernels } from "./blas_kernels.ts";
 * import { installWasmKernels } from "./wasm_kernels.ts";
 *
 * installWasmKernels();
 * const blas = installBlasKernels();
 * if (!blas.used) console.warn(`plain wasm kernels: ${blas.reason}`);
 * await tf.setBackend("wasm");
 * ```
 *
 * @throws {Error} If `threads` is not a positive integer.
 */
export function installBlasKernels(options: BlasKernelOptions = {}): BlasInfo {
  if (installed !== undefined) {
    return { ...installed.info };
  }
  const threads = options.threads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new Error(
      `installBlasKernels: invalid threads ${threads}: expected an ` +
        "integer >= 1",
    );
  }
  const load = loadOpenBlas(options.libraries ?? OPENBLAS_LIBRARIES);
  if ("problem" in load) {
    return { used: false, reason: load.problem };
  }
  const blas = load.blas;
  if (threads !== undefined) blas.setThreads(threads);

  const previous = new Map<string, tf.KernelConfig | undefined>();
  for (const name of KERNEL_NAMES) {
    previous.set(name, tf.getKernel(name, BACKEND));
  }
  for (const config of blasKernels(blas, previous, options)) {
    replaceKernel(config);
  }
  const info: BlasInfo = {
    used: true,
    library: blas.library,
    config: blas.config,
    threads: blas.threads(),
  };
  installed = { blas, info, previous };
  return { ...info };
}

/**
 * Restores the convolution kernels that were registered before
 * {@linkcode installBlasKernels}. The wasm gradient kernels stay installed,
 * and OpenBLAS stays loaded. Does nothing when the BLAS kernels are not
 * installed.
 */
export function uninstallBlasKernels(): void {
  if (installed === undefined) {
    return;
  }
  for (const name of KERNEL_NAMES) {
    const config = installed.previous.get(name);
    if (config === undefined) {
      if (tf.getKernel(name, BACKEND) != null) {
        tf.unregisterKernel(name, BACKEND);
      }
    } else {
      replaceKernel(config);
    }
  }
  installed = undefined;
}

/**
 * Reports whether {@linkcode installBlasKernels} is in effect.
 *
 * @returns True between a successful install and the next uninstall.
 */
export function blasKernelsInstalled(): boolean {
  return installed !== undefined;
}

/** Returns the library and threads of the installed BLAS kernels. */
export function blasKernelsInfo(): BlasInfo {
  return installed === undefined
    ? { used: false, reason: "the BLAS kernels are not installed" }
    : { ...installed.info };
}

/** The environment variable that turns the BLAS kernels off with "0". */
export const BLAS_ENVIRONMENT_VARIABLE = "CAMDROP_BLAS";

/**
 * Reads {@linkcode BLAS_ENVIRONMENT_VARIABLE}: false when it is "0",
 * "false" or "off", else true. Without permission to read it, returns true
 * and does not prompt.
 */
export function blasRequestedByEnvironment(): boolean {
  const permission = Deno.permissions.querySync({
    name: "env",
    variable: BLAS_ENVIRONMENT_VARIABLE,
  });
  if (permission.state !== "granted") return true;
  const value = Deno.env.get(BLAS_ENVIRONMENT_VARIABLE)?.trim().toLowerCase();
  return !(value === "0" || value === "false" || value === "off");
}
