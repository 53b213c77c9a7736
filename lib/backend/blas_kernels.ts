/**
 * Optional native convolution kernels for the tfjs wasm backend.
 * {@linkcode installBlasKernels} replaces `Conv2D`, `Conv2DBackpropFilter`
 * and `Conv2DBackpropInput` with calls into a native library, loaded
 * through `Deno.dlopen`, that read and write the wasm heap in place on the
 * library's own threads. The wasm backend itself stays single-threaded.
 * Two libraries can run them:
 *
 * - oneDNN (Debian: libdnnl2), the library behind PyTorch's CPU
 *   convolutions: its convolution primitives, built once per shape.
 * - OpenBLAS (Debian: libopenblas0-pthread): im2col in JavaScript and
 *   `cblas_sgemm` calls.
 *
 * By default oneDNN runs them when it loads, else OpenBLAS. Without either
 * library or without Deno's FFI permission (`--allow-ffi`), installation
 * registers nothing and returns the reason, so the plain wasm kernels stay
 * in use.
 *
 * On OpenBLAS, convolutions with fewer than 16 output channels or a patch
 * (kh * kw * Ci) under 32 floats go to the kernels registered before (both
 * thresholds are options). So do calls with NCHW, non-float32 data or
 * dilations other than 1, on either library.
 *
 * The same switch registers more kernels, all of which belong to this
 * path so that the plain path keeps its results:
 *
 * - `MaxPoolGrad`: oneDNN's from the workspace of its `MaxPool`, else a
 *   JavaScript kernel that was 2-3 times as fast as the shipped one. Where
 *   a window's maximum occurs twice, both send the gradient to the first,
 *   like the cpu backend; the shipped kernel picks another.
 * - `MaxPool` (oneDNN only), which keeps the workspace, and `Identity`,
 *   which shares its input's buffer instead of copying it.
 * - The fused batch-norm kernels of `batchNormTraining` and a ReLU-gradient
 *   kernel: oneDNN primitives, or JavaScript passes on OpenBLAS.
 *
 * Shapes that oneDNN rejects (such as an empty output) go to the kernels
 * registered before.
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
  type BatchNormShape,
  type DnnConvGeometry,
  loadOneDnn,
  type OneDnn,
  ONEDNN_LIBRARIES,
} from "./_onednn.ts";
import { RELU_GRAD, reluGradConfig, reluGradInto } from "./_relu_grad.ts";
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
  tf.MaxPool,
  tf.MaxPoolGrad,
  tf.Identity,
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
  RELU_GRAD,
] as const;

/**
 * The library that runs the convolutions: "onednn" (oneDNN's convolution
 * primitives), "openblas" (im2col and OpenBLAS sgemm calls), or "auto"
 * (oneDNN when it loads, else OpenBLAS).
 */
export type ConvolutionLibrary = "auto" | "onednn" | "openblas";

/** Every valid {@linkcode ConvolutionLibrary}. */
export const CONVOLUTION_LIBRARIES: readonly ConvolutionLibrary[] = [
  "auto",
  "onednn",
  "openblas",
];

/** Options of {@linkcode installBlasKernels}. */
export interface BlasKernelOptions {
  /**   * The library that runs the convolutions.
   * @default the environment variable CAMDROP_CONV when set, else "auto"
   */
  convolutions?: ConvolutionLibrary;
  /**
   * OpenBLAS library names or paths for `Deno.dlopen`, tried in order.
   * @default OPENBLAS_LIBRARIES ("libopenblas.so.0", "libopenblas.so")
   */
  libraries?: readonly string[];
  /**
   * oneDNN library names or paths for `Deno.dlopen`, tried in order.
   * @default ONEDNN_LIBRARIES (Debian's multiarch path of libdnnl.so.2,
   *   then "libdnnl.so.2")
   */
  oneDnnLibraries?: readonly string[];
  /**
   * Threads of the convolutions: OpenBLAS's pool, for every user of the
   * library in this process, or oneDNN's OpenMP threads, for the calling
   * thread. Results are bit-identical from run to run at a fixed thread
   * count, but both libraries sum in another order on 1 thread than on
   * 2, so the last bits depend on it.
   * @default the library's own choice: OPENBLAS_NUM_THREADS or
   *   OMP_NUM_THREADS, else all cores
   */
  threads?: number;
  /**
   * Convolutions with fewer output channels use the plain kernels.
   * @default 16 on OpenBLAS, 1 on oneDNN
   */
  minOutChannels?: number;
  /**
   * Convolutions whose patch (kh * kw * Ci) is smaller use the plain
   * kernels.
   * @default 32 on OpenBLAS, 1 on oneDNN
   */
  minPatchSize?: number;
}

/** Whether the accelerated kernels are in use, and which library they call. */
export interface BlasInfo {
  /** True when the three convolution kernels run on a native library. */
  used: boolean;
  /** The library family of the convolutions. */
  convolutions?: "onednn" | "openblas";
  /** The library file that was opened. */
  library?: string;
  /**
   * The library's build description: "oneDNN 2.6.3", or OpenBLAS's
   * openblas_get_config, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ...".
   */
  config?: string;
  /** Threads of the convolutions. */
  threads?: number;
  /** Reason the kernels are not in use, when they are not. */
  reason?: string;
}

/** The subset of tfjs-backend-wasm 4.22's BackendWasm that the kernels use. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

/** The loaded convolution library. */
type ConvEngine = { dnn: OneDnn } | { blas: OpenBlas };

interface InstalledState {
  info: BlasInfo;
  /** The kernels registered before, restored on uninstall. */
  previous: Map<string, tf.KernelConfig | undefined>;
  /** The ReLU gradient registered before, restored on uninstall. */
  previousReluGrad: tf.GradConfig;
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
): { geometry: DnnConvGeometry; outShape: number[] } {
  const info = convInfo(inputShape, filterShape, attrs);
  return { outShape: info.outShape, geometry: dnnGeometryOf(info) };
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

function pointerOf(
  backend: WasmBackend,
  base: Deno.PointerObject,
  info: tf.TensorInfo,
): Deno.PointerValue {
  return Deno.UnsafePointer.offset(base, floatOffset(backend, info) * 4);
}

/** {@linkcode geometryOf} with the bottom and right padding. */
function dnnGeometryOf(info: tf.backend_util.Conv2DInfo): DnnConvGeometry {
  const g = geometryOf(info);
  return {
    ...g,
    padBottom: farPadding(
      g.inHeight,
      g.outHeight,
      g.filterHeight,
      g.strideHeight,
      g.padTop,
      info.padInfo.bottom,
    ),
    padRight: farPadding(
      g.inWidth,
      g.outWidth,
      g.filterWidth,
      g.strideWidth,
      g.padLeft,
      info.padInfo.right,
    ),
  };
}

/** * Returns the bottom (or right) padding that oneDNN needs for one axis:
 * it requires out = floor((in + near + far - filter) / stride) + 1. tfjs's
 * own value satisfies that, except under dimRoundingMode "ceil" or "round",
 * whose output can have an extra row that reads past the padding. Then
 * the far padding grows to cover that row.
 */
function farPadding(
  size: number,
  out: number,
  filter: number,
  stride: number,
  near: number,
  far: number,
): number {
  const fits = (pad: number) =>
    Math.floor((size + near + pad - filter) / stride) + 1 === out;
  if (fits(far)) return far;
  return (out - 1) * stride + filter - size - near;
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
  engine: ConvEngine,
  previous: Map<string, tf.KernelConfig | undefined>,
  options: BlasKernelOptions,
): tf.KernelConfig[] {
  const dnn = "dnn" in engine ? engine.dnn : undefined;
  const blas = "blas" in engine ? engine.blas : undefined;
  // oneDNN was faster than XNNPACK at every size measured, down to the
  // default model's 4 channels (0.073 against 0.104 s a step).
  const minOutChannels = options.minOutChannels ??
    (dnn === undefined ? MIN_OUT_CHANNELS : 1);
  const minPatchSize = options.minPatchSize ??
    (dnn === undefined ? MIN_PATCH_SIZE : 1);
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
    if (dnn !== undefined && !dnn.supports("forward", g)) {
      return fallback(tf.Conv2D, args);
    }
    const out = backend.makeOutput(outShape, "float32");
    if (sizeOf(outShape) > 0 && dnn !== undefined) {
      const base = memoryOf(backend).base;
      dnn.forward(
        g,
        pointerOf(backend, base, x),
        pointerOf(backend, base, filter),
        pointerOf(backend, base, out),
      );
    } else if (sizeOf(outShape) > 0) {
      conv2dGemm(
        blas!,
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
    if (dnn !== undefined && !dnn.supports("backwardWeights", g)) {
      return fallback(tf.Conv2DBackpropFilter, args);
    }

    const out = backend.makeOutput(attrs.filterShape, "float32");
    const memory = memoryOf(backend);
    if (sizeOf(dy.shape) === 0) {
      const start = floatOffset(backend, out);
      memory.floats.fill(0, start, start + sizeOf(out.shape));
    } else if (sizeOf(out.shape) > 0 && dnn !== undefined) {
      dnn.backwardWeights(
        g,
        pointerOf(backend, memory.base, x),
        pointerOf(backend, memory.base, dy),
        pointerOf(backend, memory.base, out),
      );
    } else if (sizeOf(out.shape) > 0) {
      conv2dFilterGradGemm(
        blas!,
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
    if (dnn !== undefined && !dnn.supports("backwardData", g)) {
      return fallback(tf.Conv2DBackpropInput, args);
    }

    const out = backend.makeOutput(attrs.inputShape, "float32");
    const memory = memoryOf(backend);
    if (sizeOf(dy.shape) === 0) {
      const start = floatOffset(backend, out);
      memory.floats.fill(0, start, start + sizeOf(out.shape));
    } else if (sizeOf(out.shape) > 0 && dnn !== undefined) {
      dnn.backwardData(
        g,
        pointerOf(backend, memory.base, dy),
        pointerOf(backend, memory.base, filter),
        pointerOf(backend, memory.base, out),
      );
    } else if (sizeOf(out.shape) > 0) {
      conv2dInputGradGemm(
        blas!,
        memory,
        g,
        floatOffset(backend, dy),
        floatOffset(backend, filter),
        floatOffset(backend, out),
      );
    }
    return out;
  };

  /**
   * Workspaces of oneDNN's max pools by the output's dataId, with the
   * pool's geometry, the input and both heap offsets to check a match. Entries
   * go with their outputs; the Identity kernel below shares dataIds, so
   * the copy that the tape saves finds its entry too.
   */
  const workspaces = new WeakMap<
    object,
    {
      workspace: Uint8Array;
      key: string;
      offset: number;
      input: object;
      inputOffset: number;
    }
  >();

  const poolInfo = (x: tf.TensorInfo, attrs: tf.MaxPoolGradAttrs) =>
    tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );

  const maxPool: tf.KernelFunc = (args) => {
    const x = input(args.inputs, "x");
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    if (dnn === undefined || x.dtype !== "float32" || x.shape.length !== 4) {
      return fallback(tf.MaxPool, args);
    }
    const info = poolInfo(x, attrs);
    const g = dnnGeometryOf(info);
    if (sizeOf(info.outShape) === 0 || !dnn.supports("maxPool", g)) {
      return fallback(tf.MaxPool, args);
    }
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(info.outShape, "float32");
    const base = memoryOf(backend).base;
    const workspace = dnn.maxPoolForward(
      g,
      pointerOf(backend, base, x),
      pointerOf(backend, base, out),
    );
    workspaces.set(out.dataId, {
      workspace,
      key: JSON.stringify(g),
      offset: floatOffset(backend, out),
      input: x.dataId,
      inputOffset: floatOffset(backend, x),
    });
    return out;
  };

  const maxPoolGrad: tf.KernelFunc = (args) => {
    const dy = input(args.inputs, "dy");
    const x = input(args.inputs, "input");
    const y = input(args.inputs, "output");
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    if (x.dtype !== "float32" || dy.dtype !== "float32") {
      return fallback(tf.MaxPoolGrad, args);
    }
    const info = poolInfo(x, attrs);
    checkShape(tf.MaxPoolGrad, dy.shape, info.outShape);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(x.shape, "float32");
    if (sizeOf(x.shape) === 0) return out;
    const memory = memoryOf(backend);
    const g = dnnGeometryOf(info);
    const saved = workspaces.get(y.dataId);
    if (
      dnn !== undefined && saved !== undefined &&
      saved.key === JSON.stringify(g) &&
      saved.offset === floatOffset(backend, y) &&
      saved.input === x.dataId &&
      saved.inputOffset === floatOffset(backend, x)
    ) {
      dnn.maxPoolBackward(
        g,
        pointerOf(backend, memory.base, dy),
        saved.workspace,
        pointerOf(backend, memory.base, out),
      );
    } else {
      maxPoolGradInto(
        memory.floats,
        floatOffset(backend, x),
        floatOffset(backend, dy),
        floatOffset(backend, out),
        g,
      );
    }
    return out;
  };

  // Shares the input's data, as the cpu backend does, instead of the
  // shipped kernel's copy. No kernel of this toolkit or of tfjs writes
  // into its inputs, so a shared buffer never changes under a tensor.
  const identity: tf.KernelFunc = (args) => {
    const x = input(args.inputs, "x");
    if (x.dtype === "string") return fallback(tf.Identity, args);
    const backend = args.backend as unknown as WasmBackend;
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };

  const reluGrad: tf.KernelFunc = (args) => {
    const dy = input(args.inputs, "dy");
    const x = input(args.inputs, "x");
    checkShape(RELU_GRAD, dy.shape, x.shape);
    const backend = args.backend as unknown as WasmBackend;
    const dx = backend.makeOutput(x.shape, "float32");
    const size = sizeOf(x.shape);
    const memory = memoryOf(backend);
    if (dnn !== undefined && size > 0) {
      dnn.reluBackward(
        size,
        pointerOf(backend, memory.base, dy),
        pointerOf(backend, memory.base, x),
        pointerOf(backend, memory.base, dx),
      );
    } else {
      reluGradInto(
        memory.floats,
        floatOffset(backend, dy),
        floatOffset(backend, x),
        floatOffset(backend, dx),
        size,
      );
    }
    return dx;
  };

  const batchNorm = batchNormKernels(dnn);
  const functions: Record<string, tf.KernelFunc> = {
    [tf.Conv2D]: conv2d,
    [tf.Conv2DBackpropFilter]: filterGrad,
    [tf.Conv2DBackpropInput]: inputGrad,
    [tf.MaxPool]: maxPool,
    [tf.MaxPoolGrad]: maxPoolGrad,
    [tf.Identity]: identity,
    [RELU_GRAD]: reluGrad,
    [BATCH_NORM_TRAIN]: batchNorm.forward,
    [BATCH_NORM_TRAIN_GRAD]: batchNorm.backward,
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

/** * Builds the fused batch-norm kernels: oneDNN's primitives when `dnn` is
 * given and the data is not empty, else the JavaScript passes.
 */
function batchNormKernels(dnn: OneDnn | undefined): {
  forward: tf.KernelFunc;
  backward: tf.KernelFunc;
} {
  const forward: tf.KernelFunc = (args) => {
    const x = input(args.inputs, "x");
    const gamma = input(args.inputs, "gamma");
    const beta = input(args.inputs, "beta");
    const { epsilon } = args.attrs as unknown as { epsilon: number };
    const channels = checkBatchNormInputs(BATCH_NORM_TRAIN, x, [gamma, beta]);
    const backend = args.backend as unknown as WasmBackend;
    const y = backend.makeOutput(x.shape, "float32");
    const mean = backend.makeOutput([channels], "float32");
    const variance = backend.makeOutput([channels], "float32");
    const pixels = sizeOf(x.shape) / channels;

    const memory = memoryOf(backend);
    if (dnn !== undefined && pixels > 0 && x.shape.length === 4) {
      const at = (info: tf.TensorInfo) => pointerOf(backend, memory.base, info);
      dnn.batchNormForward(x.shape as BatchNormShape, epsilon, {
        x: at(x),
        gamma: at(gamma),
        beta: at(beta),
        y: at(y),
        mean: at(mean),
        variance: at(variance),
      });
    } else {
      batchNormForward(
        memory.floats,
        {
          x: floatOffset(backend, x),
          gamma: floatOffset(backend, gamma),
          beta: floatOffset(backend, beta),
          y: floatOffset(backend, y),
          mean: floatOffset(backend, mean),
          variance: floatOffset(backend, variance),
        },
        pixels,
        channels,
        epsilon,
      );
    }
    return [y, mean, variance];
  };

  const backward: tf.KernelFunc = (args) => {
    const dy = input(args.inputs, "dy");
    const x = input(args.inputs, "x");
    const gamma = input(args.inputs, "gamma");
    const mean = input(args.inputs, "mean");
    const variance = input(args.inputs, "variance");
    const { epsilon } = args.attrs as unknown as { epsilon: number };

    const channels = checkBatchNormInputs(BATCH_NORM_TRAIN_GRAD, dy, [
      gamma,
      mean,
      variance,
    ]);
    checkShape(BATCH_NORM_TRAIN_GRAD, dy.shape, x.shape);
    const backend = args.backend as unknown as WasmBackend;
    const dx = backend.makeOutput(dy.shape, "float32");
    const dGamma = backend.makeOutput([channels], "float32");
    const dBeta = backend.makeOutput([channels], "float32");
    const pixels = sizeOf(dy.shape) / channels;

    const memory = memoryOf(backend);
    if (dnn !== undefined && pixels > 0 && dy.shape.length === 4) {
      const at = (info: tf.TensorInfo) => pointerOf(backend, memory.base, info);
      dnn.batchNormBackward(dy.shape as BatchNormShape, epsilon, {
        dy: at(dy),
        x: at(x),
        gamma: at(gamma),
        mean: at(mean),
        variance: at(variance),
        dx: at(dx),
        dGamma: at(dGamma),
        dBeta: at(dBeta),
      });
    } else {
      batchNormBackward(
        memory.floats,
        {
          dy: floatOffset(backend, dy),
          x: floatOffset(backend, x),
          gamma: floatOffset(backend, gamma),
          mean: floatOffset(backend, mean),
          variance: floatOffset(backend, variance),
          dx: floatOffset(backend, dx),
          dGamma: floatOffset(backend, dGamma),
          dBeta: floatOffset(backend, dBeta),
        },
        pixels,
        channels,
        epsilon,
      );
    }
    return [dx, dGamma, dBeta];
  };
  return { forward, backward };
}

function checkShape(kernelName: string, actual: number[], expected: number[]) {
  if (actual.join(",") !== expected.join(",")) {
    throw new Error(
      `${kernelName}: dy has shape [${actual}] but the forward op ` +
        `implies [${expected}]`,
    );
  }
}

/** Returns the thread controls of either library. */
function engineOf(engine: ConvEngine): {
  setThreads(threads: number): void;
  defaultThreads: number;
} {
  return "dnn" in engine ? engine.dnn : engine.blas;
}

/** Loads the requested library; "auto" tries oneDNN, then OpenBLAS. */
function loadEngine(
  convolutions: ConvolutionLibrary,
  options: BlasKernelOptions,
): { engine: ConvEngine } | { problem: string } {
  const problems: string[] = [];
  if (convolutions !== "openblas") {
    const load = loadOneDnn(options.oneDnnLibraries ?? ONEDNN_LIBRARIES);
    if ("dnn" in load) return { engine: { dnn: load.dnn } };
    problems.push(load.problem);
  }
  if (convolutions !== "onednn") {
    const load = loadOpenBlas(options.libraries ?? OPENBLAS_LIBRARIES);
    if ("blas" in load) return { engine: { blas: load.blas } };
    problems.push(load.problem);
  }
  // Both loaders give the same reason for a missing FFI permission.
  return { problem: [...new Set(problems)].join("; ") };
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
 * Replaces the convolution kernels of the wasm backend, and the others
 * listed in the module documentation, with calls into oneDNN or OpenBLAS,
 * when one loads. Call `installWasmKernels` first: the batch-norm gradient
 * comes from there, and the kernels registered now are the ones that
 * calls with unsupported attributes fall back to.
 *
 * Returns the outcome instead of throwing when both libraries or the FFI
 * permission are missing, so that callers can report the fallback. Calling
 * it while installed returns the current state. Without `threads`, the
 * library's default thread count applies, whatever an earlier install set.
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
 * @throws {Error} If `threads` is not a positive integer, or the library
 *   (option or CAMDROP_CONV) is not one of {@linkcode CONVOLUTION_LIBRARIES}.
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
  const convolutions = options.convolutions ?? convolutionsByEnvironment();
  if (!CONVOLUTION_LIBRARIES.includes(convolutions)) {
    const source = options.convolutions === undefined
      ? `${CONVOLUTIONS_ENVIRONMENT_VARIABLE}=${convolutions}`
      : `convolutions '${convolutions}'`;
    throw new Error(
      `installBlasKernels: unknown convolution library (${source}): ` +
        `expected one of ${CONVOLUTION_LIBRARIES.join(", ")}`,
    );
  }
  const load = loadEngine(convolutions, options);
  if ("problem" in load) {
    return { used: false, reason: load.problem };
  }
  const engine = load.engine;
  // Without a count, the library's own default comes back, not the count
  // of an earlier install.
  const controls = engineOf(engine);
  controls.setThreads(threads ?? controls.defaultThreads);

  const previous = new Map<string, tf.KernelConfig | undefined>();
  for (const name of KERNEL_NAMES) {
    previous.set(name, tf.getKernel(name, BACKEND));
  }
  for (const config of blasKernels(engine, previous, options)) {
    replaceKernel(config);
  }
  const info: BlasInfo = "dnn" in engine
    ? {
      used: true,
      convolutions: "onednn",
      library: engine.dnn.library,
      config: `oneDNN ${engine.dnn.version}`,
      threads: engine.dnn.threads(),
    }
    : {
      used: true,
      convolutions: "openblas",
      library: engine.blas.library,
      config: engine.blas.config,
      threads: engine.blas.threads(),
    };
  const previousReluGrad = tf.getGradient(tf.Relu)!;
  tf.registerGradient(reluGradConfig(previousReluGrad));
  installed = { info, previous, previousReluGrad };
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
  tf.registerGradient(installed.previousReluGrad);
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

/** The environment variable that picks the convolution library. */
export const CONVOLUTIONS_ENVIRONMENT_VARIABLE = "CAMDROP_CONV";

/**
 * Reads {@linkcode CONVOLUTIONS_ENVIRONMENT_VARIABLE}: "auto" when it is
 * unset, empty or not readable without a prompt, else its value in lower
 * case (checked by the caller).
 */
export function convolutionsByEnvironment(): ConvolutionLibrary {
  const permission = Deno.permissions.querySync({
    name: "env",
    variable: CONVOLUTIONS_ENVIRONMENT_VARIABLE,
  });
  if (permission.state !== "granted") return "auto";
  const value = Deno.env.get(CONVOLUTIONS_ENVIRONMENT_VARIABLE)?.trim()
    .toLowerCase();
  return (value === undefined || value === ""
    ? "auto"
    : value) as ConvolutionLibrary;
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
