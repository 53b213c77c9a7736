/**
 * A shared integration check for the strategy tests: a real trainer with
 * the strategy trains on the embedded digits on the wasm backend.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { setupBackend } from "../backend/select.ts";
import { loadEmbeddedDigits } from "../data/embedded.ts";
import type {
  AudioVisualDataset,
  BatchOptions,
  SampleBatch,
  Split,
} from "../data/types.ts";
import type { FusionKind } from "../models/fusion.ts";
import { AudioVisualModel } from "../models/model.ts";
import { Trainer } from "../train/trainer.ts";
import type {
  BalanceStrategy,
  StepContext,
  TrainingForward,
} from "./strategy.ts";

/** Result of {@linkcode checkTrainsWithFlatMemory}. */
export interface TrainingCheck {
  /** Fused training loss of the first epoch. */
  loss: number;
  /** The metrics row of the first epoch. */
  row: Record<string, number | string>;
  /** Statistics of the last step. */
  stats: Record<string, number>;
}

/**
 * Trains one epoch (2 steps of 16 on 32 samples), then checks that 20
 * more steps at epoch 1 of 4 leave `tf.memory().numTensors` unchanged.
 * @throws {AssertionError} On a non-finite loss or a tensor leak.
 */
export async function checkTrainsWithFlatMemory(
  strategy: BalanceStrategy,
  fusion: FusionKind = "concat",
): Promise<TrainingCheck> {
  await setupBackend("wasm");
  const data = await loadEmbeddedDigits({
    trainSize: 32,
    valSize: 16,
    testSize: 16,
  });
  const model = new AudioVisualModel({
    numClasses: 10,
    fusion,
    width: 2,
    audioStem: "imagenet",
    visualStem: "cifar",
    visualChannels: 1,
    seed: 1,
  });
  const trainer = new Trainer(model, strategy, data, {
    epochs: 4,
    batchSize: 16,
    lr: 0.01,
    seed: 1,
    evalBatchSize: 16,
  });
  try {
    const row = await trainer.trainEpoch();
    const loss = row.train_loss as number;
    assert.ok(Number.isFinite(loss), `loss ${loss} is not finite`);

    const batches = [...trainer.dataset.batches("train", {
      batchSize: 16,
      seed: 1,
      epoch: 1,
      training: true,
      dropLast: true,
    })];
    // The first step may create optimiser state; count after it.
    let result = await trainer.trainStep(batches[0], 1, 0, 0.01);
    const before = tf.memory().numTensors;
    for (let step = 1; step <= 20; step++) {
      result = await trainer.trainStep(
        batches[step % batches.length],
        1,
        step,
        0.01,
      );
      assert.ok(Number.isFinite(result.loss), `step ${step}: loss not finite`);
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    return { loss, row, stats: result.stats };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

/** Builds the tiny CPU model of the unit tests. */
export function tinyModel(
  fusion: FusionKind = "concat",
  seed = 3,
): AudioVisualModel {
  return new AudioVisualModel({
    numClasses: 3,
    fusion,
    width: 2,
    audioStem: "cifar",
    visualStem: "cifar",
    visualChannels: 1,
    seed,
  });
}

/** Labels of {@linkcode handForward}'s batch of two. */
export const HAND_LABELS: Int32Array = new Int32Array([0, 1]);

/**
 * Builds a training forward pass by hand. It has random maps (audio
 * [2, 4, 4, 16], visual [2, 1, 4, 4, 16]), their pooled features, and
 * unimodal logits audio [[2, 0, 0], [0, 1, 0]] and visual [[0, 0, 0],
 * [1, 1, 1]] unless others are given. With {@linkcode HAND_LABELS} the
 * true-class scores are s^a = e^2 / (e^2 + 2) + e / (e + 2) and
 * s^v = 2 / 3, so audio dominates.
 */
export function handForward(
  model: AudioVisualModel,
  unimodal: { audio: number[][]; visual: number[][] } = {
    audio: [[2, 0, 0], [0, 1, 0]],
    visual: [[0, 0, 0], [1, 1, 1]],
  },
): TrainingForward {
  const random = new Random(5);
  const values = (n: number) =>
    Float32Array.from({ length: n }, () => random.next());
  const maps = {
    audio: tf.tensor4d(values(2 * 4 * 4 * 16), [2, 4, 4, 16]),
    visual: tf.tensor5d(values(2 * 4 * 4 * 16), [2, 1, 4, 4, 16]),
  };
  return {
    maps,
    pooled: model.pool(maps),
    unimodal: {
      audio: tf.tensor2d(unimodal.audio),
      visual: tf.tensor2d(unimodal.visual),
    },
    dominance: { audio: 1, visual: 1 },
  };
}

/** Disposes the tensors of {@linkcode handForward}. */
export function disposeForward(forward: TrainingForward): void {
  tf.dispose([
    ...Object.values(forward.maps),
    ...Object.values(forward.pooled),
    ...Object.values(forward.unimodal),
  ]);
}

/** Builds a step context for {@linkcode handForward}'s batch. */
export function stepContext(
  model: AudioVisualModel,
  epoch = 0,
  epochs = 100,
  seed = 9,
): StepContext {
  return {
    epoch,
    epochs,
    step: 0,
    labels: HAND_LABELS,
    model,
    random: new Random(seed),
  };
}

/** Builds an in-memory dataset: 3 classes, audio 8 x 8, one 8 x 8 frame. */
export function fakeDataset(trainSize = 20): AudioVisualDataset {
  const sizes = { train: trainSize, val: 6, test: 6 };
  return {
    name: "fake",
    classNames: ["a", "b", "c"],
    audioShape: [8, 8],
    visualShape: [1, 8, 8, 1],
    splitSizes: sizes,
    contentHash: "0",
    describe: () => ({ name: "fake" }),
    *batches(split: Split, options: BatchOptions): Iterable<SampleBatch> {
      const order = [...Array(sizes[split]).keys()];
      if (options.training) new Random(options.epoch + 1).shuffle(order);
      for (let start = 0; start < order.length; start += options.batchSize) {
        const indices = order.slice(start, start + options.batchSize);
        if (options.dropLast && indices.length < options.batchSize) break;
        // Values encode the sample index, so tests can check the packing.
        yield {
          size: indices.length,
          audio: Float32Array.from(
            { length: indices.length * 64 },
            (_, i) => indices[Math.floor(i / 64)] + (i % 64) / 100,
          ),
          visual: Float32Array.from(
            { length: indices.length * 64 },
            (_, i) => -indices[Math.floor(i / 64)] - (i % 64 % 7) / 10,
          ),
          labels: Int32Array.from(indices, (index) => index % 3),
          indices: Int32Array.from(indices),
        };
      }
    },
  };
}
