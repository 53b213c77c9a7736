/**
 * The interface every balancing method implements. The trainer calls these
 * hooks at fixed points of each step and epoch and refers to no method by name.
 *
 * Step order: encode -> dominance -> `transformMaps` (CAM and masks) ->
 * pool, fuse -> loss (+ `extraLoss`) -> gradients -> `transformGradients`
 * -> update. On backends that cannot read tensor values synchronously
 * (webgpu under Deno), an untaped forward pass comes first: it computes
 * the dominance and calls `prepareStep`, which reads what the taped hooks
 * need with `await`.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";
import type { Random } from "../_random.ts";
import type { AudioVisualDataset } from "../data/types.ts";
import type {
  AudioVisualModel,
  FeatureMaps,
  ModalityLogits,
  PooledFeatures,
} from "../models/mod.ts";

/** Dominance ratios of one batch. */
export interface Dominance {
  /** rho^a = 1 / rho^v. */
  audio: number;
  /** rho^v = mean_i y_i^v / y_i^a. */
  visual: number;
}

/** Context of a training step, passed to each step hook. */
export interface StepContext {
  /** Epoch counted from 0. */
  epoch: number;
  /** Total epochs of the run. */
  epochs: number;
  /** Step within the epoch, from 0. */
  step: number;
  /** True labels of the batch, length B. */
  labels: Int32Array;
  /** The model being trained. */
  model: AudioVisualModel;
  /** The strategy's own seeded stream (masks, noise, drop decisions). */
  random: Random;
}

/** Values of the forward pass handed to the hooks (inside the tape). */
export interface TrainingForward {
  /** Unmasked last feature maps. */
  maps: FeatureMaps;
  /** Pooled unmasked features. */
  pooled: PooledFeatures;
  /** Unimodal logits of the configured kind (probe or fusion-split). */
  unimodal: ModalityLogits;
  /** Dominance ratios of this batch from `unimodal`. */
  dominance: Dominance;
}

/** Context of an epoch, passed to the epoch hooks. */
export interface EpochContext {
  /** Epoch counted from 0. */
  epoch: number;
  /** Total epochs of the run. */
  epochs: number;
  /** The model being trained. */
  model: AudioVisualModel;
  /** The training data. */
  dataset: AudioVisualDataset;
  /** Batch size of the run. */
  batchSize: number;
  /** Seed of the run. */
  seed: number;
}

/** Weights of the three cross-entropy terms of a training step. */
export interface LossWeights {
  /** Weight of the fused cross-entropy. */
  fused: number;
  /** Weight of the audio probe cross-entropy. */
  audio: number;
  /** Weight of the visual probe cross-entropy. */
  visual: number;
}

/** A balancing method. All hooks are optional. */
export interface BalanceStrategy {
  /** Method name as used on the command line, such as "camdrop". */
  readonly name: string;
  /**
   * Whether the probe heads read detached pooled features, so that their
   * cross-entropy trains the heads and never the encoders. The trainer
   * treats a missing value as true.
   */
  readonly detachProbes?: boolean;
  /**
   * Whether hooks other than `prepareStep` read tensor values synchronously
   * (`dataSync()`). The trainer rejects such a strategy on a backend that
   * cannot (see `readsSynchronously` in `lib/backend/`). Missing means
   * false.
   */
  readonly synchronousReads?: boolean;
  /** Resolved options as plain data, saved in the run config. */
  config(): Record<string, unknown>;
  /**
   * Returns the dataset the trainer uses in place of `dataset`, such as
   * one with part of the training split held out. Called once, by the
   * trainer's constructor, with the run seed.
   */
  trainingData?(dataset: AudioVisualDataset, seed: number): AudioVisualDataset;
  /** Called before the first step of each epoch. */
  onEpochStart?(context: EpochContext): void | Promise<void>;
  /**
   * Reads, with `await`, the tensor values that `transformMaps` of the same
   * step needs, and keeps them for that call. The trainer calls it only
   * when the step runs an untaped forward pass first (a backend without
   * synchronous reads, or `TrainerOptions.valueReads` "prepass"), and
   * then calls `transformMaps` with the same context object. The forward
   * values are those of the untaped pass, equal to the taped ones, and are
   * disposed after the call.
   */
  prepareStep?(forward: TrainingForward, context: StepContext): Promise<void>;
  /**
   * Returns the feature maps that the fused loss is computed from. Runs inside the training
   * tape; masks must be constants.
   */
  transformMaps?(forward: TrainingForward, context: StepContext): FeatureMaps;
  /**
   * Returns the weights of the fused and the two probe cross-entropies of
   * this step. The trainer weights all three by 1 when this is absent.
   */
  lossWeights?(context: StepContext): LossWeights;
  /** Returns a loss term added to the fused and probe losses. */
  extraLoss?(
    forward: TrainingForward,
    fused: tf.Tensor2D,
    context: StepContext,
  ): tf.Scalar | undefined;
  /**
   * Rewrites gradients by variable name before the update. Returns a new
   * map; the trainer disposes tensors it no longer uses.
   */
  transformGradients?(
    gradients: Record<string, tf.Tensor>,
    context: StepContext,
  ): Record<string, tf.Tensor>;
  /** Called after the last step of each epoch. */
  onEpochEnd?(context: EpochContext): void | Promise<void>;
  /**
   * Per-step numbers to average into the epoch's metrics, such as
   * `mask_ratio_audio`; read after each step.
   */
  stepStats?(): Record<string, number>;
  /** State to save in checkpoints. */
  getState?(): unknown;
  /** Restores what `getState` returned. */
  setState?(state: unknown): void;
}
