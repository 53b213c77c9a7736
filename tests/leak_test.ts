/**
 * Long-run memory: 1,000 training steps of a tiny model with CAMDrop and
 * with each baseline leave the tfjs tensor count where it was after the
 * first epoch (which creates optimiser slots and strategy state).
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  AudioVisualModel,
  createStrategy,
  loadEmbeddedDigits,
  METHODS,
  setupBackend,
  Trainer,
} from "../lib/mod.ts";

const STEPS = 1000;
const BATCH = 4;
const data = await loadEmbeddedDigits({
  trainSize: 32,
  valSize: 4,
  testSize: 4,
});

for (const method of METHODS) {
  Deno.test(`${method} keeps tensor count flat`, async () => {
    await setupBackend("wasm");
    const model = new AudioVisualModel({
      numClasses: 10,
      width: 1,
      audioStem: "imagenet",
      visualStem: "cifar",
      visualChannels: 1,
      seed: 1,
    });
    const strategy = createStrategy(method);
    const trainer = new Trainer(model, strategy, data, {
      epochs: 1000,
      batchSize: BATCH,
      lr: 0.01,
      seed: 1,
      evalBatchSize: 4,
    });
    const stepsPerEpoch = Math.floor(trainer.dataset.splitSizes.train / BATCH);
    await trainer.trainEpoch();
    const before = tf.memory().numTensors;
    let steps = stepsPerEpoch;
    while (steps < STEPS) {
      await trainer.trainEpoch();
      steps += stepsPerEpoch;
    }
    assert.equal(
      tf.memory().numTensors,
      before,
      `${method}: tensors after ${steps} steps`,
    );
    trainer.dispose();
    model.dispose();
  });
}
