/**
 * The model shapes the benchmark measures, shared by our step, the PyTorch
 * reference and the report.
 *
 * @module
 */

import { EMBEDDED_DEFAULTS, resolveConfig } from "../lib/mod.ts";

/** Names of the measured shapes. */
export const SHAPES = ["default", "paper"] as const;

/** A shape name. */
export type ShapeName = typeof SHAPES[number];

/** Model, input and optimiser of one measured shape. */
export interface ShapeSpec {
  /** Shape name. */
  name: ShapeName;
  /** Source of the input batches. */
  data: "synthetic" | "embedded";
  /** Number of classes K. */
  numClasses: number;
  /** First-stage channels of both ResNet18 encoders. */
  width: number;
  /** Stem of the audio encoder. */
  audioStem: "imagenet" | "cifar";
  /** Stem of the visual encoder. */
  visualStem: "imagenet" | "cifar";
  /** Spectrogram size [F, W]. */
  audioShape: [number, number];
  /** Frame stack size [T, H, W, C]. */
  visualShape: [number, number, number, number];
  /** Samples per step. */
  batchSize: number;
  /**
   * Samples per micro-batch of our step (0: the whole batch at once). The
   * paper shape at batch 16 does not fit the wasm heap's 4 GiB in one
   * pass, so our step sums the gradients of two micro-batches of 8, as
   * the paper preset's `--micro-batch auto` does; PyTorch takes the whole
   * batch.
   */
  microBatch: number;
  /** SGD learning rate. */
  lr: number;
  /** SGD momentum. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
}

/**
 * CREMA-D as the CAMDrop paper trains it: full ResNet18 with ImageNet stems
 * on 257 x 299 spectrograms and one 224 x 224 RGB frame, 6 classes, batch
 * 16, SGD with learning rate 1e-3, momentum 0.9 and weight decay 1e-4.
 */
export const PAPER_SHAPE: ShapeSpec = {
  name: "paper",
  data: "synthetic",
  numClasses: 6,
  width: 64,
  audioStem: "imagenet",
  visualStem: "imagenet",
  audioShape: [257, 299],
  visualShape: [1, 224, 224, 3],
  batchSize: 16,
  microBatch: 8,
  lr: 1e-3,
  momentum: 0.9,
  weightDecay: 1e-4,
};

/**
 * Returns the model of `deno task repro`'s "default" preset on the
 * embedded digits. The input sizes are the embedded loader's defaults:
 * 257 x 98 log spectrograms of 1 s clips and one 32 x 32 grey frame.
 * bench/ours_step.ts checks them against the loaded dataset.
 */
export function defaultShape(): ShapeSpec {
  const config = resolveConfig("default");
  // A frame count of 0 or less selects the dataset's own, 1 for the digits.
  const frames = config.data.frames > 0
    ? config.data.frames
    : EMBEDDED_DEFAULTS.frames;
  const size = EMBEDDED_DEFAULTS.imageSize;
  return {
    name: "default",
    data: "embedded",
    numClasses: 10,
    width: config.model.width,
    audioStem: config.model.audioStem,
    visualStem: config.model.visualStem,
    audioShape: [257, 98],
    visualShape: [frames, size, size, EMBEDDED_DEFAULTS.channels],
    batchSize: config.train.batchSize,
    microBatch: config.train.microBatch,
    lr: config.train.lr,
    momentum: config.train.momentum,
    weightDecay: config.train.weightDecay,
  };
}

/** Returns the spec of `name`. */
export function shapeSpec(name: ShapeName): ShapeSpec {
  return name === "paper" ? PAPER_SHAPE : defaultShape();
}

/** Describes a shape in one sentence for the benchmark record. */
export function describeShape(spec: ShapeSpec): string {
  const [f, w] = spec.audioShape;
  const [t, h, wv, c] = spec.visualShape;
  const input = spec.data === "synthetic"
    ? "random normal input"
    : "real batches of the embedded digits";
  const micro = spec.microBatch > 0 && spec.microBatch < spec.batchSize
    ? ` (ours in micro-batches of ${spec.microBatch})`
    : "";
  return `ResNet18 of width ${spec.width}, ${spec.audioStem} stem for ` +
    `1 x ${f} x ${w} spectrograms, ${spec.visualStem} stem for ${t} frame(s) ` +
    `of ${h} x ${wv} x ${c}, ${spec.numClasses} classes, batch ` +
    `${spec.batchSize}${micro}, learning rate ${spec.lr}, ${input}`;
}
