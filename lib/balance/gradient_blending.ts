/**
 * Gradient-Blending (Wang et al., "What Makes Training Multi-Modal
 * Classification Networks Hard?", CVPR 2020), online variant.
 *
 * The loss is w_fused CE(fused) + w_a CE(audio probe) + w_v CE(visual
 * probe), with probe heads on non-detached features, so the unimodal
 * losses train the encoders. Every window of epochs the weights are
 * re-estimated per stream from how its losses moved over the window:
 * G = drop of the held-out loss, O = growth of the held-out minus training
 * loss gap, floored; w = |G / O^2|, normalised to sum 1. The held-out loss
 * comes from a seeded 10 % of the training split that the trainer never
 * trains on (see `trainingData`). The test split is never used.
 *
 * Before the first estimate all three weights are 1/3.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../_random.ts";
import type { AudioVisualDataset, SampleBatch } from "../data/types.ts";
import type { AudioVisualModel } from "../models/mod.ts";
import {
  batchTensors,
  checkRange,
  type SampleShapes,
  scaleEpochs,
} from "./_baseline.ts";
import { chooseHeldOut, HeldOutTrainingData } from "./_held_out.ts";
import type { BalanceStrategy, EpochContext, LossWeights } from "./strategy.ts";

/** Options of {@linkcode GradientBlending}. */
export interface GradientBlendingOptions {
  /**
   * Epochs between weight estimates, an integer >= 1. Default: 10 scaled
   * by the run's epoch count / 100, rounded, at least 1.
   */
  windowEpochs?: number;
  /** Fraction of the training split held out, in (0, 1). @default 0.1 */
  heldOutFraction?: number;
  /** Floor of the gap growth O, > 0. @default 1e-4 */
  gapFloor?: number;
  /** Batch size of the loss estimates. @default 64 */
  evalBatchSize?: number;
}

/** The three loss streams. */
export const BLEND_STREAMS = ["fused", "audio", "visual"] as const;

/** A loss stream. */
export type BlendStream = typeof BLEND_STREAMS[number];

/** Losses of one stream at evaluation points, oldest first. */
export interface LossCurve {
  /** Training losses. */
  train: number[];
  /** Held-out (validation) losses. */
  val: number[];
}

/**
 * Computes the blending weights from the first and last point of each
 * stream's loss curves: G = val[0] - val[last], O = max((val[last] -
 * train[last]) - (val[0] - train[0]), gapFloor), w = |G / O^2|,
 * normalised to sum 1. All-zero weights become equal weights.
 * @throws {Error} If a curve has fewer than two points or its train and
 * val lengths differ.
 */
export function blendingWeights(
  curves: Record<BlendStream, LossCurve>,
  gapFloor = 1e-4,
): LossWeights {
  const raw = BLEND_STREAMS.map((stream) => {
    const { train, val } = curves[stream];
    if (val.length < 2 || train.length !== val.length) {
      throw new Error(
        `blendingWeights: the ${stream} curve needs equal train and val ` +
          `lengths of at least 2, got ${train.length} and ${val.length}.`,
      );
    }
    const last = val.length - 1;
    const generalization = val[0] - val[last];
    const overfitting = Math.max(
      (val[last] - train[last]) - (val[0] - train[0]),
      gapFloor,
    );
    return Math.abs(generalization / (overfitting * overfitting));
  });
  const total = raw.reduce((a, b) => a + b, 0);
  if (!(total > 0) || !Number.isFinite(total)) {
    return { fused: 1 / 3, audio: 1 / 3, visual: 1 / 3 };
  }
  return {
    fused: raw[0] / total,
    audio: raw[1] / total,
    visual: raw[2] / total,
  };
}

/** Mean training and held-out losses of the three streams at one point. */
export interface LossPoint {
  /** Epoch at whose start the losses were measured. */
  epoch: number;
  /** Training loss per stream. */
  train: Record<BlendStream, number>;
  /** Held-out loss per stream. */
  val: Record<BlendStream, number>;
}

/**
 * Measures mean cross-entropies of the fused and probe logits on the
 * given batches, in evaluation mode.
 */
export function streamLosses(
  model: AudioVisualModel,
  batches: Iterable<SampleBatch>,
  shapes: SampleShapes,
): Record<BlendStream, number> {
  const sums = { fused: 0, audio: 0, visual: 0 };
  let count = 0;
  for (const batch of batches) {
    const stacked = tf.tidy(() => {
      const inputs = batchTensors(batch, shapes);
      const outputs = model.predict(inputs.audio, inputs.visual);
      const labels = tf.oneHot(
        tf.tensor1d(batch.labels, "int32"),
        outputs.fused.shape[1],
      );
      const summed = (logits: tf.Tensor2D) =>
        tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), labels)));
      return tf.stack([
        summed(outputs.fused),
        summed(outputs.probe.audio),
        summed(outputs.probe.visual),
      ]);
    });
    const values = stacked.dataSync();
    stacked.dispose();
    sums.fused += values[0];
    sums.audio += values[1];
    sums.visual += values[2];
    count += batch.size;
  }
  if (count === 0) {
    throw new Error("streamLosses: the batches held no samples.");
  }
  return {
    fused: sums.fused / count,
    audio: sums.audio / count,
    visual: sums.visual / count,
  };
}

/** The Gradient-Blending strategy. */
export class GradientBlending implements BalanceStrategy {
  /** Method name. */
  readonly name = "gb";
  /** The unimodal losses train the encoders. */
  readonly detachProbes = false;
  /** `onEpochStart` reads the held-out losses with `dataSync()`. */
  readonly synchronousReads = true;
  readonly #windowEpochs?: number;
  readonly #heldOutFraction: number;
  readonly #gapFloor: number;
  readonly #evalBatchSize: number;
  #data?: HeldOutTrainingData;
  #weights: LossWeights = { fused: 1 / 3, audio: 1 / 3, visual: 1 / 3 };
  #point?: LossPoint;

  /**
   * Creates the strategy.
   * @throws {Error} If an option lies outside its range.
   */
  constructor(options: GradientBlendingOptions = {}) {
    const method = "Gradient-Blending";
    if (options.windowEpochs !== undefined) {
      this.#windowEpochs = checkRange(
        method,
        "window epochs",
        options.windowEpochs,
        { min: 1, integer: true },
      );
    }
    this.#heldOutFraction = checkRange(
      method,
      "held-out fraction",
      options.heldOutFraction ?? 0.1,
      { min: 0, max: 1, minOpen: true, maxOpen: true },
    );
    this.#gapFloor = checkRange(method, "gap floor", options.gapFloor ?? 1e-4, {
      min: 0,
      minOpen: true,
    });
    this.#evalBatchSize = checkRange(
      method,
      "evaluation batch size",
      options.evalBatchSize ?? 64,
      { min: 1, integer: true },
    );
  }

  /** Returns the resolved options. */
  config(): Record<string, unknown> {
    return {
      method: this.name,
      windowEpochs: this.#windowEpochs ?? "max(1, round(10 x epochs / 100))",
      heldOutFraction: this.#heldOutFraction,
      gapFloor: this.#gapFloor,
      evalBatchSize: this.#evalBatchSize,
      unimodal: "probe, not detached",
    };
  }

  /** Returns `dataset` with a seeded part of its training split held out. */
  trainingData(dataset: AudioVisualDataset, seed: number): AudioVisualDataset {
    const heldOut = chooseHeldOut(
      dataset.splitSizes.train,
      this.#heldOutFraction,
      deriveSeed(seed, "gradient-blending", "held-out"),
    );
    this.#data = new HeldOutTrainingData(
      dataset,
      heldOut,
      deriveSeed(seed, "gradient-blending", "training-sample"),
    );
    return this.#data;
  }

  /**
   * At each window boundary, measures the stream losses and, from the
   * second boundary on, re-estimates the weights.
   * @throws {Error} If the trainer does not train on `trainingData`'s
   * dataset, so the held-out samples would be trained on.
   */
  onEpochStart(context: EpochContext): void {
    const data = this.#data;
    if (data === undefined || context.dataset !== data) {
      throw new Error(
        "Gradient-Blending: the trainer does not use the dataset from " +
          "trainingData(), so the held-out samples would be trained on. " +
          "Pass the strategy to a Trainer, which calls trainingData().",
      );
    }
    const window = this.#windowEpochs ??
      Math.max(1, Math.round(scaleEpochs(10, context.epochs)));
    if (context.epoch % window !== 0) return;
    if (this.#point !== undefined && this.#point.epoch >= context.epoch) {
      return;
    }
    const point = this.measure(context.model);
    point.epoch = context.epoch;
    if (this.#point !== undefined) {
      this.#weights = blendingWeights(
        {
          fused: curve(this.#point, point, "fused"),
          audio: curve(this.#point, point, "audio"),
          visual: curve(this.#point, point, "visual"),
        },
        this.#gapFloor,
      );
    }
    this.#point = point;
  }

  /**
   * Measures training and held-out losses of the three streams now.
   * @throws {Error} Before `trainingData` was called.
   */
  measure(model: AudioVisualModel): LossPoint {
    const data = this.#data;
    if (data === undefined) {
      throw new Error(
        "Gradient-Blending: call trainingData() before measuring losses.",
      );
    }
    const shapes = { audio: data.audioShape, visual: data.visualShape };
    const size = this.#evalBatchSize;
    return {
      epoch: -1,
      train: streamLosses(
        model,
        data.subsetBatches(data.trainingSample, size),
        shapes,
      ),
      val: streamLosses(model, data.subsetBatches(data.heldOut, size), shapes),
    };
  }

  /** Returns the current stream weights. */
  lossWeights(): LossWeights {
    return this.#weights;
  }

  /** Reports the current stream weights. */
  stepStats(): Record<string, number> {
    return {
      weight_fused: this.#weights.fused,
      weight_audio: this.#weights.audio,
      weight_visual: this.#weights.visual,
    };
  }

  /** Weights and the last loss point, for checkpoints. */
  getState(): unknown {
    return { weights: { ...this.#weights }, point: this.#point ?? null };
  }

  /** Restores what `getState` returned. */
  setState(state: unknown): void {
    const saved = state as { weights?: LossWeights; point?: LossPoint | null };
    if (saved?.weights !== undefined) this.#weights = { ...saved.weights };
    this.#point = saved?.point ?? undefined;
  }
}

function curve(
  start: LossPoint,
  end: LossPoint,
  stream: BlendStream,
): LossCurve {
  return {
    train: [start.train[stream], end.train[stream]],
    val: [start.val[stream], end.val[stream]],
  };
}
