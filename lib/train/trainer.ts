/**
 * One trainer for every balancing method. It runs the step in a fixed
 * order and calls the strategy's hooks; it knows no method by name.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";
import { dominanceFromConfidences } from "../balance/dominance.ts";
import type {
  BalanceStrategy,
  EpochContext,
  StepContext,
} from "../balance/strategy.ts";
import type { AudioVisualDataset, SampleBatch, Split } from "../data/types.ts";
import { imbalanceRatio, SplitAccumulator } from "../metrics/classification.ts";
import type { MetricsRow } from "../metrics/frame.ts";
import {
  applyBatchNormUpdates,
  type AudioVisualModel,
  type BatchNormUpdate,
} from "../models/mod.ts";
import {
  createOptimizer,
  type Optimizer,
  type OptimizerName,
  stepDecay,
} from "./optimizers.ts";

/** Options of {@linkcode Trainer}. */
export interface TrainerOptions {
  /** Total epochs. */
  epochs: number;
  /** Samples per training batch. @default 16 */
  batchSize?: number;
  /** Optimiser. @default "sgd" */
  optimizer?: OptimizerName;
  /** Initial learning rate. @default 1e-3 */
  lr?: number;
  /** SGD momentum. @default 0.9 */
  momentum?: number;
  /** L2 weight decay. @default 1e-4 */
  weightDecay?: number;
  /**
   * Epochs between learning-rate decays. Default: 70 scaled by
   * epochs / 100, as the paper decays at epoch 70 of 100.
   */
  lrDecayEvery?: number;
  /** Decay factor. @default 0.1 */
  lrDecayFactor?: number;
  /** Run seed: data order, noise, masks (initialisation is the model's). */
  seed?: number;
  /** Batch size for evaluation. @default 64 */
  evalBatchSize?: number;
  /**
   * What a NaN or infinite loss or gradient does: "stop" raises
   * {@linkcode NonFiniteError}; "skip" leaves the weights untouched for that
   * batch and counts it in the epoch's `train_skipped_batches`.
   * @default "stop"
   */
  nonFinite?: "stop" | "skip";
}

/** Progress of one training step, for progress bars. */
export interface StepProgress {
  /** Epoch from 0. */
  epoch: number;
  /** Step within the epoch, from 0. */
  step: number;
  /** Steps in this epoch. */
  steps: number;
  /** Fused loss of this batch. */
  loss: number;
  /** Running training accuracy of the epoch so far. */
  accuracy: number;
  /** Run name, set when several runs report to one listener. */
  run?: string;
}

/** Callbacks of {@linkcode Trainer.trainEpoch}. */
export interface TrainCallbacks {
  /** Called after every training step. */
  onStep?: (progress: StepProgress) => void;
  /** Called while evaluating, once per split. */
  onEvaluate?: (split: Split) => void;
}

/** Plain-data state of a {@linkcode Trainer}, for checkpoints. */
export interface TrainerState {
  /** Epochs finished. */
  epoch: number;
  /** Metrics of the finished epochs. */
  history: MetricsRow[];
  /** Position of the strategy's random stream. */
  random: number;
  /** The strategy's own state, or null. */
  strategy: unknown;
}

/** A non-finite loss or gradient. */
export class NonFiniteError extends Error {
  /** Epoch from 0. */
  readonly epoch: number;
  /** Step within the epoch. */
  readonly step: number;
  /** Which value was not finite. */
  readonly tensor: string;

  /** Creates the error. */
  constructor(epoch: number, step: number, tensor: string) {
    super(
      `Training stopped: ${tensor} is not finite at epoch ${epoch}, step ` +
        `${step}. Lower the learning rate or check the input data; the ` +
        `last complete epoch's files are kept.`,
    );
    this.name = "NonFiniteError";
    this.epoch = epoch;
    this.step = step;
    this.tensor = tensor;
  }
}

/** Trains a model with one strategy, epoch by epoch. */
export class Trainer {
  /** The model being trained. */
  readonly model: AudioVisualModel;
  /** The balancing strategy. */
  readonly strategy: BalanceStrategy;
  /** The data, or the `strategy.trainingData` replacement of it. */
  readonly dataset: AudioVisualDataset;
  /** Resolved options. */
  readonly options: Required<TrainerOptions>;
  /** One row of metrics per finished epoch. */
  readonly history: MetricsRow[] = [];
  readonly #optimizer: Optimizer;
  #epoch = 0;
  #random: Random;

  /**
   * Creates a trainer.
   * @throws {Error} If an option is invalid or the dataset does not match
   * the model.
   */
  constructor(
    model: AudioVisualModel,
    strategy: BalanceStrategy,
    dataset: AudioVisualDataset,
    options: TrainerOptions,
  ) {
    const epochs = options.epochs;
    if (!Number.isInteger(epochs) || epochs < 1) {
      throw new Error(
        `Trainer: epochs must be an integer >= 1, got ${epochs}.`,
      );
    }
    this.options = {
      epochs,
      batchSize: options.batchSize ?? 16,
      optimizer: options.optimizer ?? "sgd",
      lr: options.lr ?? 1e-3,
      momentum: options.momentum ?? 0.9,
      weightDecay: options.weightDecay ?? 1e-4,
      lrDecayEvery: options.lrDecayEvery ?? 70 * epochs / 100,
      lrDecayFactor: options.lrDecayFactor ?? 0.1,
      seed: options.seed ?? 0,
      evalBatchSize: options.evalBatchSize ?? 64,
      nonFinite: options.nonFinite ?? "stop",
    };
    const o = this.options;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 2) {
      throw new Error(
        `Trainer: batch size must be an integer >= 2 (batch norm needs two ` +
          `samples), got ${o.batchSize}.`,
      );
    }
    if (!(o.lr > 0) || !Number.isFinite(o.lr)) {
      throw new Error(`Trainer: learning rate must be > 0, got ${o.lr}.`);
    }
    if (dataset.classNames.length !== model.options.numClasses) {
      throw new Error(
        `Trainer: the dataset has ${dataset.classNames.length} classes but ` +
          `the model was built for ${model.options.numClasses}.`,
      );
    }
    if (dataset.visualShape[3] !== model.options.visualChannels) {
      throw new Error(
        `Trainer: frames have ${dataset.visualShape[3]} channels but the ` +
          `model expects ${model.options.visualChannels}.`,
      );
    }
    this.model = model;
    this.strategy = strategy;
    this.dataset = strategy.trainingData?.(dataset, o.seed) ?? dataset;
    this.#optimizer = createOptimizer(o.optimizer, {
      momentum: o.momentum,
      weightDecay: o.weightDecay,
    });
    this.#random = new Random(deriveSeed(o.seed, "strategy", strategy.name));
  }

  /** Epochs finished so far. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Learning rate of epoch `epoch`. */
  learningRate(epoch: number): number {
    const o = this.options;
    return stepDecay(o.lr, epoch, o.lrDecayEvery, o.lrDecayFactor);
  }

  /**
   * Trains one epoch, then evaluates validation and test.
   * @returns The epoch's metrics row (also appended to `history`).
   * @throws {NonFiniteError} On a NaN or infinite loss or gradient.
   */
  async trainEpoch(callbacks: TrainCallbacks = {}): Promise<MetricsRow> {
    const epoch = this.#epoch;
    const started = performance.now();
    const context = this.#epochContext(epoch);
    await this.strategy.onEpochStart?.(context);

    const lr = this.learningRate(epoch);
    // Batches are decoded one at a time: a paper-size epoch does not fit in
    // memory at once. With dropLast, the epoch has floor(N / B) steps.
    const batchSize = this.options.batchSize;
    const steps = Math.floor(this.dataset.splitSizes.train / batchSize);
    const sums: Record<string, number> = {};
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let step = 0;
    let trained = 0;
    let skipped = 0;
    for (
      const batch of this.dataset.batches("train", {
        batchSize,
        seed: this.options.seed,
        epoch,
        training: true,
        dropLast: true,
      })
    ) {
      const result = this.trainStep(batch, epoch, step, lr);
      step++;
      if (result.skipped) {
        skipped++;
        continue;
      }
      trained++;
      lossSum += result.loss * batch.size;
      correct += result.correct;
      seen += batch.size;
      for (const [key, value] of Object.entries(result.stats)) {
        sums[key] = (sums[key] ?? 0) + value;
      }
      callbacks.onStep?.({
        epoch,
        step: step - 1,
        steps,
        loss: result.loss,
        accuracy: correct / seen,
      });
      // Let timers and signal handlers run between steps.
      if (step % 8 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    if (step > 0 && trained === 0) {
      throw new NonFiniteError(epoch, step - 1, "every batch's loss");
    }
    if (step === 0) {
      throw new Error(
        `Trainer: the training split has ${this.dataset.splitSizes.train} ` +
          `samples, fewer than one batch of ${batchSize}; lower the batch ` +
          `size or use more data.`,
      );
    }
    await this.strategy.onEpochEnd?.(context);

    const row: MetricsRow = {
      epoch,
      lr,
      train_loss: lossSum / seen,
      train_acc: correct / seen,
    };
    for (const [key, value] of Object.entries(sums)) {
      row[`train_${key}`] = value / trained;
    }
    if (this.options.nonFinite === "skip") {
      row.train_skipped_batches = skipped;
    }
    for (const split of ["val", "test"] as const) {
      callbacks.onEvaluate?.(split);
      Object.assign(row, this.evaluate(split));
    }
    row.seconds = (performance.now() - started) / 1000;
    this.history.push(row);
    this.#epoch++;
    return row;
  }

  /**
   * Runs one training step on `batch`.
   * @returns The batch's fused loss, correct count and strategy statistics.
   * @throws {NonFiniteError} On a NaN or infinite loss or gradient.
   */
  trainStep(
    batch: SampleBatch,
    epoch: number,
    step: number,
    lr: number,
  ): {
    loss: number;
    correct: number;
    stats: Record<string, number>;
    skipped?: boolean;
  } {
    const model = this.model;
    const strategy = this.strategy;
    const labels = batch.labels;
    const context: StepContext = {
      epoch,
      epochs: this.options.epochs,
      step,
      labels,
      model,
      random: this.#random,
    };
    const updates: BatchNormUpdate[] = [];
    const stats: Record<string, number> = {};
    let fusedLogits: tf.Tensor2D | undefined;
    let fusedLoss: tf.Scalar | undefined;

    const { audio, visual, labelTensor } = this.#toTensors(batch);
    const { value, grads } = tf.variableGrads(() => {
      // Encode both modalities once.
      const maps = model.encode(audio, visual, true, updates);
      const pooled = model.pool(maps);

      // Dominance from the unimodal logits of the configured kind.
      const unimodal = model.unimodalLogits(pooled);
      const confidences = trueClassConfidencePair(
        unimodal.audio,
        unimodal.visual,
        labels,
      );
      const dominance = dominanceFromConfidences(
        confidences.audio,
        confidences.visual,
      );
      stats.rho_audio = dominance.audio;
      stats.rho_visual = dominance.visual;

      // CAM and masks (or any other feature transform).
      const forward = { maps, pooled, unimodal, dominance };
      const fusedMaps = strategy.transformMaps?.(forward, context) ?? maps;

      // Fuse the (masked) maps.
      const fusedPooled = fusedMaps === maps ? pooled : model.pool(fusedMaps);
      const fused = model.fusion.apply(fusedPooled.audio, fusedPooled.visual);
      fusedLogits = tf.keep(fused);

      // Loss: fused cross-entropy, probe cross-entropies, strategy terms.
      const fusedCe = crossEntropy(fused, labelTensor);
      fusedLoss = tf.keep(fusedCe);
      const probes = model.probeLogits(pooled, strategy.detachProbes ?? true);
      const audioCe = crossEntropy(probes.audio, labelTensor);
      const visualCe = crossEntropy(probes.visual, labelTensor);
      const weights = strategy.lossWeights?.(context);
      let loss = weights === undefined
        ? tf.addN([fusedCe, audioCe, visualCe])
        : tf.addN([
          tf.mul(fusedCe, weights.fused),
          tf.mul(audioCe, weights.audio),
          tf.mul(visualCe, weights.visual),
        ]);
      const extra = strategy.extraLoss?.(forward, fused, context);
      if (extra !== undefined) loss = tf.add(loss, extra);
      return loss as tf.Scalar;
    }, [...model.store.trainable.values()]);

    try {
      // Check the loss and the gradient norm before touching any weight.
      const lossValue = fusedLoss!.dataSync()[0];
      const named = this.#nameGradients(grads);
      const bad = !Number.isFinite(value.dataSync()[0])
        ? "the training loss"
        : firstNonFinite(named);
      if (bad !== undefined) {
        if (this.options.nonFinite === "skip") {
          return { loss: NaN, correct: 0, stats: {}, skipped: true };
        }
        throw new NonFiniteError(epoch, step, bad);
      }

      // Update: strategy gradient transform, optimiser, running statistics.
      const transformed = strategy.transformGradients?.(named, context) ??
        named;
      this.#optimizer.step(model.store.trainable, transformed, lr);
      if (transformed !== named) {
        for (const tensor of Object.values(transformed)) {
          if (!Object.values(named).includes(tensor)) tensor.dispose();
        }
      }
      applyBatchNormUpdates(updates);

      // Log.
      const predicted = tf.tidy(() => tf.argMax(fusedLogits!, 1).dataSync());
      let correct = 0;
      for (let i = 0; i < labels.length; i++) {
        if (predicted[i] === labels[i]) correct++;
      }
      Object.assign(stats, strategy.stepStats?.() ?? {});
      return { loss: lossValue, correct, stats, skipped: false };
    } finally {
      for (const update of updates) {
        update.mean.dispose();
        update.variance.dispose();
      }
      tf.dispose([value, fusedLogits!, fusedLoss!, audio, visual, labelTensor]);
      tf.dispose(Object.values(grads));
    }
  }

  /**
   * Evaluates a split with the unmasked model in evaluation mode.
   * @returns Metrics keyed `<split>_acc`, `<split>_loss`,
   * `<split>_audio_acc_probe`, `<split>_visual_acc_probe`,
   * `<split>_imbalance_probe`, `<split>_rho_visual_probe`, ... and the same
   * with `_split` for fusion-split logits under concat and sum fusion.
   */
  evaluate(split: Split): MetricsRow {
    const model = this.model;
    const heads = model.fusion.hasSplitLogits
      ? ["probe", "split"] as const
      : ["probe"] as const;
    const accumulators = Object.fromEntries(
      heads.map((head) => [head, new SplitAccumulator()]),
    ) as Record<string, SplitAccumulator>;
    for (
      const batch of this.dataset.batches(split, {
        batchSize: this.options.evalBatchSize,
        seed: this.options.seed,
        epoch: 0,
      })
    ) {
      const { audio, visual, labelTensor } = this.#toTensors(batch);
      tf.tidy(() => {
        const outputs = model.predict(audio, visual);
        const lossSum = crossEntropy(outputs.fused, labelTensor)
          .mul(batch.size).dataSync()[0];
        const fusedPredicted = tf.argMax(outputs.fused, 1).dataSync();
        for (const head of heads) {
          const logits = head === "probe" ? outputs.probe : outputs.split!;
          accumulators[head].add(
            batch.labels,
            {
              fused: fusedPredicted,
              audio: tf.argMax(logits.audio, 1).dataSync(),
              visual: tf.argMax(logits.visual, 1).dataSync(),
            },
            lossSum,
            trueClassConfidencePair(logits.audio, logits.visual, batch.labels),
          );
        }
      });
      tf.dispose([audio, visual, labelTensor]);
    }
    const probe = accumulators.probe;
    const row: MetricsRow = {
      [`${split}_loss`]: probe.meanLoss(),
      [`${split}_acc`]: probe.accuracy("fused"),
    };
    for (const head of heads) {
      const acc = accumulators[head];
      const audioAcc = acc.accuracy("audio");
      const visualAcc = acc.accuracy("visual");
      row[`${split}_audio_acc_${head}`] = audioAcc;
      row[`${split}_visual_acc_${head}`] = visualAcc;
      row[`${split}_imbalance_${head}`] = imbalanceRatio(audioAcc, visualAcc);
      row[`${split}_rho_visual_${head}`] = acc.visualDominance();
    }
    return row;
  }

  /** Optimiser state, for checkpoints. */
  get optimizer(): Optimizer {
    return this.#optimizer;
  }

  /**
   * Returns the trainer's own state as plain data: epochs done, metrics so
   * far, the strategy's random-stream position and the strategy state.
   * Model and optimiser tensors are saved separately.
   */
  getState(): TrainerState {
    return {
      epoch: this.#epoch,
      history: this.history.map((row) => ({ ...row })),
      random: this.#random.getState(),
      strategy: this.strategy.getState?.() ?? null,
    };
  }

  /** Restores what {@linkcode Trainer.getState} returned. */
  setState(state: TrainerState): void {
    this.#epoch = state.epoch;
    this.history.length = 0;
    this.history.push(...state.history.map((row) => ({ ...row })));
    this.#random.setState(state.random);
    if (state.strategy !== null) this.strategy.setState?.(state.strategy);
  }

  /** Frees the optimiser state (the model stays). */
  dispose(): void {
    this.#optimizer.dispose();
  }

  #epochContext(epoch: number): EpochContext {
    return {
      epoch,
      epochs: this.options.epochs,
      model: this.model,
      dataset: this.dataset,
      batchSize: this.options.batchSize,
      seed: this.options.seed,
    };
  }

  #toTensors(batch: SampleBatch) {
    const [f, w] = this.dataset.audioShape;
    const [t, h, wv, c] = this.dataset.visualShape;
    const b = batch.size;
    return {
      audio: tf.tensor4d(batch.audio, [b, f, w, 1]),
      visual: tf.tensor5d(batch.visual, [b, t, h, wv, c]),
      labelTensor: tf.tensor1d(batch.labels, "int32"),
    };
  }

  #nameGradients(grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
    return this.model.store.byStoreName(grads);
  }
}

/** Mean softmax cross-entropy of logits [B, K] against int labels [B]. */
export function crossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits);
    const oneHot = tf.oneHot(labels, logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, oneHot), 1))) as tf.Scalar;
  });
}

function trueClassConfidencePair(
  audio: tf.Tensor2D,
  visual: tf.Tensor2D,
  labels: Int32Array,
): { audio: Float32Array; visual: Float32Array } {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), audio.shape[1]);
    const both = tf.stack([
      tf.sum(tf.mul(tf.softmax(audio), oneHot), 1),
      tf.sum(tf.mul(tf.softmax(visual), oneHot), 1),
    ]);
    const values = both.dataSync() as Float32Array;
    const b = labels.length;
    return { audio: values.slice(0, b), visual: values.slice(b) };
  });
}

function firstNonFinite(named: Record<string, tf.Tensor>): string | undefined {
  const names = Object.keys(named);
  const total = tf.tidy(() =>
    tf.addN(names.map((name) => tf.sum(tf.square(named[name]))))
  );
  const norm = total.dataSync()[0];
  total.dispose();
  if (Number.isFinite(norm)) return undefined;
  for (const name of names) {
    const bad = tf.tidy(() =>
      tf.logicalNot(tf.all(tf.isFinite(named[name]))).dataSync()[0]
    );
    if (bad) return `the gradient of "${name}"`;
  }
  // Every gradient is finite but their squared sum overflows.
  return "the gradient norm";
}
