/**
 * One trainer for every balancing method. It runs the step in a fixed
 * order and calls the strategy's hooks; it refers to no method by name.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";
import { readsSynchronously } from "../backend/_webgpu.ts";
import { dominanceFromConfidences } from "../balance/dominance.ts";
import type {
  BalanceStrategy,
  Dominance,
  EpochContext,
  StepContext,
  TrainingForward,
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
   * epochs / 100, as the CAMDrop paper decays at epoch 70 of 100.
   */
  lrDecayEvery?: number;
  /** Decay factor. @default 0.1 */
  lrDecayFactor?: number;
  /** Run seed: data order, noise, masks (initialisation is the model's). */
  seed?: number;
  /** Batch size for evaluation. @default 64 */
  evalBatchSize?: number;
  /**
   * Policy for a NaN or infinite loss or gradient: "stop" raises
   * {@linkcode NonFiniteError}; "skip" leaves the weights untouched for that
   * batch and counts it in the epoch's `train_skipped_batches`.
   * @default "stop"
   */
  nonFinite?: "stop" | "skip";
  /**
   * Samples per micro-batch for gradient accumulation; 0 trains each batch
   * at once. "auto" measures one step's peak memory on the first batch and
   * picks the largest micro-batch that fits the wasm heap (3 GiB of its
   * 4 GiB), or 0 on other backends. Batch-norm statistics and strategy
   * decisions (dominance, masks) are then per micro-batch.
   * @default 0
   */
  microBatch?: number | "auto";
  /**
   * Way of reading the tensor values a step needs before the loss (the
   * dominance ratios, and what `prepareStep` of the strategy reads, such as
   * CAMDrop's masks). "sync" reads them with `dataSync()` inside the taped
   * pass. "prepass" first runs the forward pass untaped and reads them with
   * `await`, which costs one more forward pass per step but works on
   * backends without synchronous reads. "auto" takes "prepass" on such a
   * backend (webgpu under Deno) and "sync" elsewhere.
   * @default "auto"
   */
  valueReads?: "auto" | "sync" | "prepass";
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
  /** Description of the non-finite value, such as "the training loss". */
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
  #microBatch = 0;

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
      microBatch: options.microBatch ?? 0,
      valueReads: options.valueReads ?? "auto",
    };
    const o = this.options;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 2) {
      throw new Error(
        `Trainer: batch size must be an integer >= 2 (batch norm needs two ` +
          `samples), got ${o.batchSize}.`,
      );
    }
    if (
      o.microBatch !== "auto" &&
      !(Number.isInteger(o.microBatch) && o.microBatch >= 0)
    ) {
      throw new Error(
        `Trainer: micro-batch must be "auto" or an integer >= 0, got ` +
          `${o.microBatch}.`,
      );
    }
    this.#microBatch = o.microBatch === "auto" ? -1 : o.microBatch;
    if (!["auto", "sync", "prepass"].includes(o.valueReads)) {
      throw new Error(
        `Trainer: valueReads must be "auto", "sync" or "prepass", got ` +
          `"${o.valueReads}".`,
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
      if (this.#microBatch < 0) {
        this.#microBatch = await this.#pickMicroBatch(batch);
      }
      const result = await this.trainStep(batch, epoch, step, lr);
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
      Object.assign(row, await this.evaluate(split));
    }
    row.seconds = (performance.now() - started) / 1000;
    this.history.push(row);
    this.#epoch++;
    return row;
  }

  /**
   * Runs one training step on `batch`. With `microBatch` set, the batch is
   * split into micro-batches whose gradients are summed (weighted by their
   * share of the batch) before one optimiser update.
   * @returns The batch's fused loss, correct count and strategy statistics,
   * or `skipped: true` when a non-finite batch was skipped.
   * @throws {NonFiniteError} On a NaN or infinite loss or gradient.
   * @throws {Error} If the strategy reads values synchronously and the
   *   active backend cannot.
   */
  async trainStep(
    batch: SampleBatch,
    epoch: number,
    step: number,
    lr: number,
  ): Promise<{
    loss: number;
    correct: number;
    stats: Record<string, number>;
    skipped?: boolean;
  }> {
    this.#checkReads();
    const model = this.model;
    const strategy = this.strategy;
    const micro = this.#microBatch;
    const chunks = micro > 0 && micro < batch.size
      ? splitBatch(batch, micro, this.dataset)
      : [batch];
    let accumulated: Record<string, tf.Tensor> | undefined;
    const updates: BatchNormUpdate[] = [];
    const stats: Record<string, number> = {};
    let lossSum = 0;
    let correct = 0;
    let bad: string | undefined;
    try {
      for (const chunk of chunks) {
        const context: StepContext = {
          epoch,
          epochs: this.options.epochs,
          step,
          labels: chunk.labels,
          model,
          random: this.#random,
        };
        const part = await this.#forwardBackward(chunk, context, updates);
        const weight = chunk.size / batch.size;
        lossSum += part.loss * chunk.size;
        correct += part.correct;
        for (const [key, value] of Object.entries(part.stats)) {
          stats[key] = (stats[key] ?? 0) + value * weight;
        }
        if (!Number.isFinite(part.total)) bad ??= "the training loss";

        // Strategy gradient transform, then the weighted sum over chunks.
        const transformed = strategy.transformGradients?.(
          part.gradients,
          context,
        ) ?? part.gradients;
        if (transformed !== part.gradients) {
          for (const tensor of Object.values(part.gradients)) {
            if (!Object.values(transformed).includes(tensor)) {
              tensor.dispose();
            }
          }
        }
        if (chunks.length === 1) {
          accumulated = transformed;
          continue;
        }
        const previous: Record<string, tf.Tensor> = accumulated ?? {};
        const next: Record<string, tf.Tensor> = {};
        for (const [name, gradient] of Object.entries(transformed)) {
          next[name] = tf.tidy(() => {
            const scaled = tf.mul(gradient, weight);
            return previous[name] ? tf.add(previous[name], scaled) : scaled;
          });
        }
        tf.dispose([...Object.values(previous), ...Object.values(transformed)]);
        accumulated = next;
      }

      // Check the loss and the gradient norm before touching any weight.
      bad ??= await firstNonFinite(accumulated!);
      if (bad !== undefined) {
        if (this.options.nonFinite === "skip") {
          return { loss: NaN, correct: 0, stats: {}, skipped: true };
        }
        throw new NonFiniteError(epoch, step, bad);
      }

      // Update: optimiser, then running statistics (one fold per chunk).
      this.#optimizer.step(model.store.trainable, accumulated!, lr);
      applyBatchNormUpdates(updates);
      return { loss: lossSum / batch.size, correct, stats, skipped: false };
    } finally {
      for (const update of updates) {
        update.mean.dispose();
        update.variance.dispose();
      }
      if (accumulated) tf.dispose(Object.values(accumulated));
    }
  }

  /** Micro-batch size in use (0: whole batches; -1: not yet chosen). */
  get microBatch(): number {
    return this.#microBatch;
  }

  /**
   * Picks a micro-batch size that keeps a step within the wasm heap, from
   * the peak memory of a forward and backward pass on two samples. The
   * probe applies no update and uses a throwaway random stream.
   */
  async #pickMicroBatch(batch: SampleBatch): Promise<number> {
    if (tf.getBackend() !== "wasm") return 0;
    const budget = 3 * 2 ** 30 - tf.memory().numBytes;
    const probe = splitBatch(batch, 2, this.dataset)[0];
    const updates: BatchNormUpdate[] = [];
    const context: StepContext = {
      epoch: 0,
      epochs: this.options.epochs,
      step: 0,
      labels: probe.labels,
      model: this.model,
      random: new Random(0),
    };
    const before = tf.memory().numBytes;
    const info = await tf.profile(async () => {
      const part = await this.#forwardBackward(probe, context, updates);
      tf.dispose(Object.values(part.gradients));
    });
    for (const update of updates) tf.dispose([update.mean, update.variance]);
    // The optimiser's slots and the summed gradients add about two copies of
    // the weights, which the two-sample peak does not include.
    const weights = this.model.store.countTrainable() * 4;
    const perSample = Math.max(1, (info.peakBytes - before) / probe.size);
    const fits = Math.floor((budget - 2 * weights) / perSample);
    return fits >= batch.size ? 0 : Math.max(1, fits);
  }

  /**
   * Runs the taped forward and backward pass of one (micro-)batch, after an
   * untaped forward pass when values must be read asynchronously.
   * Batch-norm statistics are appended to `updates`; the caller owns the
   * returned gradients.
   */
  async #forwardBackward(
    batch: SampleBatch,
    context: StepContext,
    updates: BatchNormUpdate[],
  ): Promise<{
    loss: number;
    total: number;
    correct: number;
    gradients: Record<string, tf.Tensor>;
    stats: Record<string, number>;
  }> {
    const model = this.model;
    const strategy = this.strategy;
    const labels = batch.labels;
    const stats: Record<string, number> = {};
    let fusedLogits: tf.Tensor2D | undefined;
    let fusedLoss: tf.Scalar | undefined;
    let value: tf.Scalar | undefined;
    let gradients: Record<string, tf.Tensor> | undefined;

    const { audio, visual, labelTensor } = this.#toTensors(batch);
    try {
      const prepared = this.#usesPrepass()
        ? await this.#prepass(audio, visual, context)
        : undefined;
      const taped = tf.variableGrads(() => {
        const step = this.#stepLoss(
          { audio, visual, labels: labelTensor },
          context,
          updates,
          stats,
          prepared,
        );
        fusedLogits = tf.keep(step.fused);
        fusedLoss = tf.keep(step.fusedCe);
        return step.loss;
      }, [...model.store.trainable.values()]);
      value = taped.value;
      gradients = this.#nameGradients(taped.grads);

      // Read back after the tape, asynchronously so that every backend can.
      const predictedTensor = tf.argMax(fusedLogits!, 1);
      const [predicted, lossValue, totalValue] = await Promise.all([
        predictedTensor.data(),
        fusedLoss!.data(),
        value.data(),
      ]);
      predictedTensor.dispose();
      let correct = 0;
      for (let i = 0; i < labels.length; i++) {
        if (predicted[i] === labels[i]) correct++;
      }
      Object.assign(stats, strategy.stepStats?.() ?? {});
      const result = {
        loss: lossValue[0],
        total: totalValue[0],
        correct,
        gradients,
        stats,
      };
      gradients = undefined;
      return result;
    } finally {
      if (gradients !== undefined) tf.dispose(Object.values(gradients));
      const owned = [fusedLogits, fusedLoss, value, audio, visual, labelTensor];
      tf.dispose(owned.filter((tensor) => tensor !== undefined));
    }
  }

  /**
   * Computes the loss of one (micro-)batch inside the training tape, from
   * the encoders to the strategy's extra term. Reads the dominance
   * synchronously unless `prepared` gives it.
   * @returns The total loss, the fused logits and their cross-entropy.
   */
  #stepLoss(
    inputs: { audio: tf.Tensor4D; visual: tf.Tensor5D; labels: tf.Tensor1D },
    context: StepContext,
    updates: BatchNormUpdate[],
    stats: Record<string, number>,
    prepared?: Dominance,
  ): { loss: tf.Scalar; fused: tf.Tensor2D; fusedCe: tf.Scalar } {
    const model = this.model;
    const strategy = this.strategy;
    const labelTensor = inputs.labels;

    // Encode both modalities once.
    const maps = model.encode(inputs.audio, inputs.visual, true, updates);
    const pooled = model.pool(maps);

    // Dominance from the unimodal logits of the configured kind.
    const unimodal = model.unimodalLogits(pooled);
    const dominance = prepared ?? dominanceFromConfidences(
      ...readConfidences(unimodal.audio, unimodal.visual, context.labels),
    );
    stats.rho_audio = dominance.audio;
    stats.rho_visual = dominance.visual;

    // CAM and masks (or any other feature transform).
    const forward = { maps, pooled, unimodal, dominance };
    const fusedMaps = strategy.transformMaps?.(forward, context) ?? maps;

    // Fuse the (masked) maps.
    const fusedPooled = fusedMaps === maps ? pooled : model.pool(fusedMaps);
    const fused = model.fusion.apply(fusedPooled.audio, fusedPooled.visual);

    // Loss: fused cross-entropy, probe cross-entropies, strategy terms.
    const fusedCe = crossEntropy(fused, labelTensor);
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
    return { loss: loss as tf.Scalar, fused, fusedCe };
  }

  /** Whether steps run the untaped forward pass of `valueReads`. */
  #usesPrepass(): boolean {
    const mode = this.options.valueReads;
    return mode === "prepass" || (mode === "auto" && !readsSynchronously());
  }

  /**
   * Runs the untaped forward pass of `valueReads` "prepass": reads the
   * unimodal confidences and lets the strategy read what its taped hooks
   * need. The pass is in training mode, so it computes the same batch
   * statistics as the taped one, and it collects no batch-norm updates.
   * @returns The dominance ratios of the batch.
   */
  async #prepass(
    audio: tf.Tensor4D,
    visual: tf.Tensor5D,
    context: StepContext,
  ): Promise<Dominance> {
    const model = this.model;
    const labels = context.labels;
    const tensors = tf.tidy(() => {
      const maps = model.encode(audio, visual, true);
      const pooled = model.pool(maps);
      const unimodal = model.unimodalLogits(pooled);
      return [
        maps.audio,
        maps.visual,
        pooled.audio,
        pooled.visual,
        unimodal.audio,
        unimodal.visual,
        confidencePair(unimodal.audio, unimodal.visual, labels),
      ];
    });
    try {
      const confidences = splitPair(await tensors[6].data() as Float32Array);
      const dominance = dominanceFromConfidences(...confidences);
      const forward: TrainingForward = {
        maps: {
          audio: tensors[0] as tf.Tensor4D,
          visual: tensors[1] as tf.Tensor5D,
        },
        pooled: {
          audio: tensors[2] as tf.Tensor2D,
          visual: tensors[3] as tf.Tensor2D,
        },
        unimodal: {
          audio: tensors[4] as tf.Tensor2D,
          visual: tensors[5] as tf.Tensor2D,
        },
        dominance,
      };
      await this.strategy.prepareStep?.(forward, context);
      return dominance;
    } finally {
      tf.dispose(tensors);
    }
  }

  /**
   * Rejects a strategy that reads synchronously when the active backend
   * cannot, before its first read fails with an error from inside tfjs.
   */
  #checkReads(): void {
    if (this.strategy.synchronousReads && !readsSynchronously()) {
      throw new Error(
        `Trainer: method "${this.strategy.name}" reads tensor values ` +
          `synchronously, which the "${tf.getBackend()}" backend cannot do ` +
          `in this runtime. Train it on the wasm or cpu backend.`,
      );
    }
  }

  /**
   * Evaluates a split with the unmasked model in evaluation mode.
   * @returns Metrics keyed `<split>_acc`, `<split>_loss`,
   * `<split>_audio_acc_probe`, `<split>_visual_acc_probe`,
   * `<split>_imbalance_probe`, `<split>_rho_visual_probe`, ... and the same
   * with `_split` for fusion-split logits under concat and sum fusion.
   */
  async evaluate(split: Split): Promise<MetricsRow> {
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
      // Per head: predicted audio and visual classes, then confidences.
      const [lossSum, fusedPredicted, ...perHead] = tf.tidy(() => {
        const outputs = model.predict(audio, visual);
        const tensors: tf.Tensor[] = [
          tf.mul(crossEntropy(outputs.fused, labelTensor), batch.size),
          tf.argMax(outputs.fused, 1),
        ];
        for (const head of heads) {
          const logits = head === "probe" ? outputs.probe : outputs.split!;
          tensors.push(
            tf.argMax(logits.audio, 1),
            tf.argMax(logits.visual, 1),
            confidencePair(logits.audio, logits.visual, batch.labels),
          );
        }
        return tensors;
      });
      const values = await Promise.all(
        [lossSum, fusedPredicted, ...perHead].map((tensor) => tensor.data()),
      );
      tf.dispose([lossSum, fusedPredicted, ...perHead]);
      tf.dispose([audio, visual, labelTensor]);
      heads.forEach((head, h) => {
        const [audioPredicted, visualPredicted, confidences] = values.slice(
          2 + 3 * h,
          5 + 3 * h,
        );
        const [audioConfidence, visualConfidence] = splitPair(
          confidences as Float32Array,
        );
        accumulators[head].add(
          batch.labels,
          {
            fused: values[1],
            audio: audioPredicted,
            visual: visualPredicted,
          },
          values[0][0],
          { audio: audioConfidence, visual: visualConfidence },
        );
      });
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

/**
 * Splits a batch into consecutive micro-batches of at most `size` samples.
 */
export function splitBatch(
  batch: SampleBatch,
  size: number,
  dataset: Pick<AudioVisualDataset, "audioShape" | "visualShape">,
): SampleBatch[] {
  const audioPer = dataset.audioShape[0] * dataset.audioShape[1];
  const visualPer = dataset.visualShape.reduce((a, b) => a * b, 1);
  const chunks: SampleBatch[] = [];
  for (let start = 0; start < batch.size; start += size) {
    const end = Math.min(batch.size, start + size);
    chunks.push({
      size: end - start,
      audio: batch.audio.subarray(start * audioPer, end * audioPer),
      visual: batch.visual.subarray(start * visualPer, end * visualPer),
      labels: batch.labels.subarray(start, end),
      indices: batch.indices.subarray(start, end),
    });
  }
  return chunks;
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

/**
 * Returns softmax(z)[c_i] of each sample for audio and visual logits
 * [B, K], stacked as [2, B] so that one read fetches both.
 */
function confidencePair(
  audio: tf.Tensor2D,
  visual: tf.Tensor2D,
  labels: Int32Array,
): tf.Tensor2D {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), audio.shape[1]);
    return tf.stack([
      tf.sum(tf.mul(tf.softmax(audio), oneHot), 1),
      tf.sum(tf.mul(tf.softmax(visual), oneHot), 1),
    ]) as tf.Tensor2D;
  });
}

/** Splits the values of {@linkcode confidencePair} into audio and visual. */
function splitPair(values: Float32Array): [Float32Array, Float32Array] {
  const b = values.length / 2;
  return [values.slice(0, b), values.slice(b)];
}

/** Reads the confidences of {@linkcode confidencePair} synchronously. */
function readConfidences(
  audio: tf.Tensor2D,
  visual: tf.Tensor2D,
  labels: Int32Array,
): [Float32Array, Float32Array] {
  const pair = confidencePair(audio, visual, labels);
  const values = pair.dataSync() as Float32Array;
  pair.dispose();
  return splitPair(values);
}

async function firstNonFinite(
  named: Record<string, tf.Tensor>,
): Promise<string | undefined> {
  const names = Object.keys(named);
  const total = tf.tidy(() =>
    tf.addN(names.map((name) => tf.sum(tf.square(named[name]))))
  );
  const norm = (await total.data())[0];
  total.dispose();
  if (Number.isFinite(norm)) return undefined;
  for (const name of names) {
    const flag = tf.tidy(() => tf.logicalNot(tf.all(tf.isFinite(named[name]))));
    const bad = (await flag.data())[0];
    flag.dispose();
    if (bad) return `the gradient of "${name}"`;
  }
  // Every gradient is finite but their squared sum overflows.
  return "the gradient norm";
}
