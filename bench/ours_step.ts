/**
 * Times our training step for one shape and one method, in a process of its
 * own so that peak memory belongs to this case alone (the wasm heap never
 * shrinks). Progress goes to stderr, and the result is one JSON line on
 * stdout.
 *
 * Usage: deno run --allow-read --allow-env --allow-ffi bench/ours_step.ts
 *   --shape paper|default --method naive|camdrop --warmup N --steps N
 *   [--batch N] [--micro-batch N] (default: the shape's)
 *   [--blas] (the accelerated path; CAMDROP_CONV picks oneDNN or OpenBLAS)
 *   [--backend wasm|webgpu]
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import {
  type AudioVisualDataset,
  AudioVisualModel,
  type BlasInfo,
  createStrategy,
  openDataset,
  resolveConfig,
  type SampleBatch,
  setupBackend,
  Trainer,
} from "../lib/mod.ts";
import { type ShapeName, SHAPES, type ShapeSpec, shapeSpec } from "./cases.ts";
import { forwardFlops } from "./flops.ts";
import { median, peakRssBytes } from "./stats.ts";

/** The measurement of one case, as printed on stdout. */
export interface OursResult {
  /** Shape name. */
  shape: ShapeName;
  /** Method name. */
  method: string;
  /** Active tfjs backend. */
  backend: string;
  /** The WebGPU adapter (vendor, architecture, description), on webgpu. */
  device?: string;
  /** Whether the accelerated kernels ran, with their library and threads. */
  blas: BlasInfo;
  /** tfjs version. */
  tfjs: string;
  /** Samples per step. */
  batchSize: number;
  /** Samples per micro-batch (0: the whole batch in one pass). */
  microBatch: number;
  /** Untimed steps run first. */
  warmup: number;
  /** Seconds of each timed step. */
  stepSeconds: number[];
  /** Median of `stepSeconds`. */
  medianSeconds: number;
  /** Samples per second at the median step time. */
  samplesPerSecond: number;
  /** Forward FLOPs per sample (conv and dense layers, 2 x MACs). */
  forwardFlops: number;
  /** Trainable parameters. */
  parameters: number;
  /** Largest process RSS of Deno.memoryUsage() sampled before and after each step. */
  rssSampledPeakBytes: number;
  /** The kernel's high-water RSS (VmHWM), the same measure as ru_maxrss. */
  rssPeakBytes?: number;
  /** Bytes of live tensors after the timed steps: weights, buffers, momentum. */
  tensorBytesAfter: number;
  /** Peak bytes of live tensors during one profiled step (tf.profile). */
  tensorPeakBytes: number;
  /** Size of the wasm heap at the end, when the backend is wasm. */
  wasmHeapBytes?: number;
}

/** The output of a case that failed. */
export interface OursFailure {
  /** Shape name. */
  shape: ShapeName;
  /** Method name. */
  method: string;
  /** Samples per step that were tried. */
  batchSize: number;
  /** Samples per micro-batch that were tried (0: the whole batch). */
  microBatch: number;
  /** First line of the error. */
  error: string;
  /** Whether the wasm heap had grown to within 256 MiB of its 4 GiB limit. */
  outOfMemory: boolean;
  /** Size of the wasm heap after the failure. */
  wasmHeapBytes?: number;
}

/** Largest wasm heap of tfjs-backend-wasm 4.22 (Emscripten's 4 GiB). */
export const WASM_HEAP_LIMIT_BYTES = 4 * 1024 ** 3;

/**
 * Batches of random normal noise, for shapes whose dataset (CREMA-D) is not
 * available here. Step time does not depend on the values.
 */
class SyntheticDataset implements AudioVisualDataset {
  readonly name = "synthetic";
  readonly classNames: readonly string[];
  readonly audioShape: readonly [number, number];
  readonly visualShape: readonly [number, number, number, number];
  readonly splitSizes = { train: 0, val: 0, test: 0 };
  readonly contentHash = "synthetic";
  readonly #spec: ShapeSpec;

  constructor(spec: ShapeSpec) {
    this.#spec = spec;
    this.classNames = Array.from(
      { length: spec.numClasses },
      (_, i) => `class${i}`,
    );
    this.audioShape = spec.audioShape;
    this.visualShape = spec.visualShape;
  }

  *batches(): Iterable<SampleBatch> {
    const b = this.#spec.batchSize;
    const [f, w] = this.audioShape;
    const [t, h, wv, c] = this.visualShape;
    let seed = 1;
    for (;;) {
      const labels = new Int32Array(b);
      for (let i = 0; i < b; i++) labels[i] = i % this.classNames.length;
      yield {
        size: b,
        audio: normalNoise(b * f * w, seed++),
        visual: normalNoise(b * t * h * wv * c, seed++),
        labels,
        indices: Int32Array.from({ length: b }, (_, i) => i),
      };
    }
  }

  describe(): Record<string, unknown> {
    return { name: this.name };
  }
}

/** Standard normal values from a seeded xorshift32 and Box-Muller. */
function normalNoise(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 1) / 4294967297;
  };
  for (let i = 0; i < length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < length) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** Opens the data of the "default" preset as `deno task repro` does. */
async function openEmbedded(spec: ShapeSpec): Promise<AudioVisualDataset> {
  const dataset = await openDataset(resolveConfig("default"));
  const same = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((value, i) => value === b[i]);
  if (
    !same(dataset.audioShape, spec.audioShape) ||
    !same(dataset.visualShape, spec.visualShape) ||
    dataset.classNames.length !== spec.numClasses
  ) {
    throw new Error(
      `The embedded data has audio ${dataset.audioShape}, frames ` +
        `${dataset.visualShape} and ${dataset.classNames.length} classes, ` +
        `but bench/cases.ts expects ${spec.audioShape}, ${spec.visualShape} ` +
        `and ${spec.numClasses}: update defaultShape().`,
    );
  }
  return dataset;
}

function wasmHeapBytes(): number | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
  const backend = tf.backend() as unknown as {
    wasm?: { HEAPU8?: Uint8Array };
  };
  return backend.wasm?.HEAPU8?.byteLength;
}

/**
 * Measures one case. Progress lines go to `log`. With `blas`, the
 * accelerated kernels run, and a missing library is an error rather
 * than a silent fallback. A `microBatch` between 0 and the batch size
 * splits each step into micro-batches whose gradients are summed. On
 * "webgpu" the adapter must exist; there is no fallback to another backend.
 */
export async function measureOurs(
  shape: ShapeName,
  method: string,
  batchSize: number,
  warmup: number,
  steps: number,
  log: (message: string) => void,
  blas = false,
  microBatch = 0,
  backend: "wasm" | "webgpu" = "wasm",
): Promise<OursResult> {
  const spec = { ...shapeSpec(shape), batchSize };
  const info = await setupBackend(backend, { blas });
  if (blas && !info.blas.used) {
    throw new Error(
      `The accelerated kernels are not in use: ${info.blas.reason}`,
    );
  }
  const device = backend === "webgpu" ? await adapterName() : undefined;
  const dataset = spec.data === "embedded"
    ? await openEmbedded(spec)
    : new SyntheticDataset(spec);
  const model = new AudioVisualModel({
    numClasses: spec.numClasses,
    fusion: "concat",
    width: spec.width,
    audioStem: spec.audioStem,
    visualStem: spec.visualStem,
    visualChannels: spec.visualShape[3],
  });
  const strategy = createStrategy(method);
  const epochs = 100;
  const trainer = new Trainer(model, strategy, dataset, {
    epochs,
    batchSize: spec.batchSize,
    optimizer: "sgd",
    lr: spec.lr,
    momentum: spec.momentum,
    weightDecay: spec.weightDecay,
    microBatch,
  });
  await strategy.onEpochStart?.({
    epoch: 0,
    epochs,
    model,
    dataset,
    batchSize: spec.batchSize,
    seed: 0,
  });

  // Build every batch before timing, so that data loading is not timed.
  const needed = warmup + steps + 1;
  const batches: SampleBatch[] = [];
  for (
    const batch of dataset.batches("train", {
      batchSize: spec.batchSize,
      seed: 0,
      epoch: 0,
      training: true,
      dropLast: true,
    })
  ) {
    batches.push(batch);
    if (batches.length === needed) break;
  }
  if (batches.length === 0) {
    throw new Error(`The ${shape} data yielded no training batch.`);
  }
  const batchAt = (i: number) => batches[i % batches.length];

  let rssPeak = Deno.memoryUsage().rss;
  const sampleRss = () => {
    rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
  };
  const stepSeconds: number[] = [];
  let path = "";
  if (backend === "webgpu") path = " WebGPU";
  else if (blas) {
    path = info.blas.convolutions === "onednn" ? " oneDNN" : " OpenBLAS";
  }
  const name = `ours${path} ${shape} ${method}`;
  for (let i = 0; i < warmup + steps; i++) {
    const timed = i >= warmup;
    sampleRss();
    const started = performance.now();
    await trainer.trainStep(batchAt(i), 0, i, spec.lr);
    const seconds = (performance.now() - started) / 1000;
    sampleRss();
    if (timed) stepSeconds.push(seconds);
    const phase = timed
      ? `timed step ${i - warmup + 1}/${steps}`
      : `warm-up step ${i + 1}/${warmup}`;
    log(`${name}: ${phase} ${seconds.toFixed(2)} s`);
  }
  const tensorBytesAfter = tf.memory().numBytes;

  // One more, untimed step under tf.profile for the peak of live tensors.
  const profile = await tf.profile(async () => {
    await trainer.trainStep(
      batchAt(warmup + steps),
      0,
      warmup + steps,
      spec.lr,
    );
    return [];
  });
  sampleRss();
  log(`${name}: profiled step done`);

  const medianSeconds = median(stepSeconds);
  const result: OursResult = {
    shape,
    method,
    backend: info.name,
    device,
    blas: info.blas,
    tfjs: info.tfjsVersion,
    batchSize: spec.batchSize,
    microBatch: microBatch > 0 && microBatch < spec.batchSize ? microBatch : 0,
    warmup,
    stepSeconds,
    medianSeconds,
    samplesPerSecond: spec.batchSize / medianSeconds,
    forwardFlops: forwardFlops(model, spec.audioShape, spec.visualShape).total,
    parameters: model.store.countTrainable(),
    rssSampledPeakBytes: rssPeak,
    rssPeakBytes: await peakRssBytes(),
    tensorBytesAfter,
    tensorPeakBytes: profile.peakBytes,
    wasmHeapBytes: wasmHeapBytes(),
  };
  trainer.dispose();
  model.dispose();
  return result;
}

/**
 * Describes the WebGPU adapter in one line from `GPUAdapter.info`, leaving
 * out the bare numbers (PCI ids) that Deno reports for vendor and device.
 */
async function adapterName(): Promise<string> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  const adapter = await gpu?.requestAdapter();
  if (adapter == null) return "unknown adapter";
  const info = adapter.info;
  const parts = [info.vendor, info.architecture, info.device, info.description]
    .filter((part) => part !== undefined && !/^\d*$/.test(part));
  return parts.length > 0 ? [...new Set(parts)].join(", ") : "unnamed adapter";
}

function positiveInteger(option: string, value: string, min: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) {
    throw new Error(
      `Invalid --${option} "${value}": expected an integer >= ${min}.`,
    );
  }
  return number;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      shape: { type: "string" },
      method: { type: "string", default: "naive" },
      batch: { type: "string" },
      "micro-batch": { type: "string" },
      warmup: { type: "string", default: "1" },
      steps: { type: "string", default: "3" },
      blas: { type: "boolean", default: false },
      backend: { type: "string", default: "wasm" },
    },
  });
  if (values.backend !== "wasm" && values.backend !== "webgpu") {
    throw new Error(
      `Invalid --backend "${values.backend}": expected wasm or webgpu.`,
    );
  }
  const shape = values.shape as ShapeName;
  if (!SHAPES.includes(shape)) {
    throw new Error(
      `Invalid --shape "${values.shape}": expected one of ${
        SHAPES.join(", ")
      }.`,
    );
  }
  const batchSize = values.batch === undefined
    ? shapeSpec(shape).batchSize
    : positiveInteger("batch", values.batch, 2);
  const microBatch = values["micro-batch"] === undefined
    ? shapeSpec(shape).microBatch
    : positiveInteger("micro-batch", values["micro-batch"], 0);
  const encoder = new TextEncoder();
  try {
    const result = await measureOurs(
      shape,
      values.method,
      batchSize,
      positiveInteger("warmup", values.warmup, 0),
      positiveInteger("steps", values.steps, 1),
      (message) => Deno.stderr.writeSync(encoder.encode(`  ${message}\n`)),
      values.blas,
      microBatch,
      values.backend,
    );
    console.log(JSON.stringify(result));
  } catch (error) {
    // A full wasm heap shows up as "memory access out of bounds" or
    // "Aborted()", so judge it by the heap size instead.
    const heap = wasmHeapBytes();
    const failure: OursFailure = {
      shape,
      method: values.method,
      batchSize,
      microBatch,
      error: String(error).split("\n")[0],
      outOfMemory: heap !== undefined &&
        heap > WASM_HEAP_LIMIT_BYTES - 256 * 1024 ** 2,
      wasmHeapBytes: heap,
    };
    console.log(JSON.stringify(failure));
    Deno.exit(2);
  }
}
