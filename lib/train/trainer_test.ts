import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { setupBackend } from "../backend/select.ts";
import { createStrategy } from "../balance/registry.ts";
import type { BalanceStrategy } from "../balance/strategy.ts";
import { loadEmbeddedDigits } from "../data/embedded.ts";
import type { AudioVisualDataset } from "../data/types.ts";
import { AudioVisualModel } from "../models/model.ts";
import { assertRelativeError } from "../_testing.ts";
import { NonFiniteError, Trainer, type TrainerOptions } from "./trainer.ts";

const data = await loadEmbeddedDigits({
  trainSize: 48,
  valSize: 32,
  testSize: 32,
});

function makeTrainer(
  method: string | BalanceStrategy,
  dataset: AudioVisualDataset = data,
  seed = 1,
  options: Partial<TrainerOptions> = {},
) {
  const model = new AudioVisualModel({
    numClasses: 10,
    width: 2,
    audioStem: "imagenet",
    visualStem: "cifar",
    visualChannels: 1,
    seed,
  });
  const strategy = typeof method === "string" ? createStrategy(method) : method;
  const trainer = new Trainer(model, strategy, dataset, {
    epochs: 4,
    batchSize: 8,
    lr: 0.01,
    seed,
    evalBatchSize: 32,
    ...options,
  });
  return { model, trainer };
}

Deno.test("Trainer keeps tensor count flat", async () => {
  await setupBackend("wasm");
  for (const method of ["camdrop", "naive"]) {
    const { model, trainer } = makeTrainer(method);
    const batches = [...data.batches("train", {
      batchSize: 8,
      seed: 1,
      epoch: 0,
      training: true,
    })];
    // The first step creates the momentum buffers.
    await trainer.trainStep(batches[0], 3, 0, 0.01);
    const before = tf.memory().numTensors;
    const steps = method === "camdrop" ? 100 : 20;
    for (let step = 1; step <= steps; step++) {
      await trainer.trainStep(batches[step % batches.length], 3, step, 0.01);
    }
    await trainer.evaluate("val");
    assert.equal(tf.memory().numTensors, before, `${method} leaks tensors`);
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("Trainer gives equal metrics for equal seeds", async () => {
  await setupBackend("wasm");
  const rows = [];
  for (let run = 0; run < 2; run++) {
    const { model, trainer } = makeTrainer("camdrop");
    const row = await trainer.trainEpoch();
    delete row.seconds;
    rows.push(row);
    trainer.dispose();
    model.dispose();
  }
  assert.deepEqual(rows[0], rows[1]);
  const { model, trainer } = makeTrainer("camdrop", data, 2);
  const other = await trainer.trainEpoch();
  assert.notEqual(other.train_loss, rows[0].train_loss);
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer records metric columns", async () => {
  await setupBackend("wasm");
  const { model, trainer } = makeTrainer("camdrop");
  const row = await trainer.trainEpoch();
  for (
    const column of [
      "epoch",
      "lr",
      "train_loss",
      "train_acc",
      "train_rho_audio",
      "train_rho_visual",
      "train_mask_ratio_audio",
      "train_mask_ratio_visual",
      "val_acc",
      "val_loss",
      "val_audio_acc_probe",
      "val_visual_acc_probe",
      "val_imbalance_probe",
      "test_acc",
      "test_audio_acc_split",
      "seconds",
    ]
  ) {
    assert.equal(typeof row[column], "number", `missing column ${column}`);
  }
  // r = rho / (1 + rho) * r_max_eff, averaged over steps: positive.
  assert.ok((row.train_mask_ratio_audio as number) > 0);
  assert.ok((row.train_mask_ratio_audio as number) < 0.3);
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer stops on a NaN loss", async () => {
  await setupBackend("wasm");
  // The same data with one spectrogram value replaced by NaN.
  const corrupted: AudioVisualDataset = {
    ...data,
    describe: () => data.describe(),
    *batches(split, options) {
      for (const batch of data.batches(split, options)) {
        const audio = batch.audio.slice();
        audio[5] = NaN;
        yield { ...batch, audio };
      }
    },
  };
  const { model, trainer } = makeTrainer("camdrop", corrupted);
  await assert.rejects(
    () => trainer.trainEpoch(),
    (error: unknown) => {
      assert.ok(error instanceof NonFiniteError);
      assert.equal(error.epoch, 0);
      assert.equal(error.step, 0);
      assert.match(error.message, /not finite at epoch 0, step 0/);
      return true;
    },
  );
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer skips NaN batches on request", async () => {
  await setupBackend("wasm");
  // Every batch whose first sample is index 0 of the split gets a NaN.
  const corrupted: AudioVisualDataset = {
    ...data,
    describe: () => data.describe(),
    *batches(split, options) {
      for (const batch of data.batches(split, options)) {
        if (split !== "train" || !batch.indices.includes(0)) {
          yield batch;
          continue;
        }
        const audio = batch.audio.slice();
        audio[5] = NaN;
        yield { ...batch, audio };
      }
    },
  };
  const model = new AudioVisualModel({
    numClasses: 10,
    width: 2,
    audioStem: "imagenet",
    visualStem: "cifar",
    visualChannels: 1,
    seed: 1,
  });
  const trainer = new Trainer(model, createStrategy("camdrop"), corrupted, {
    epochs: 2,
    batchSize: 8,
    lr: 0.01,
    seed: 1,
    nonFinite: "skip",
  });
  const row = await trainer.trainEpoch();
  assert.equal(row.train_skipped_batches, 1);
  assert.ok(Number.isFinite(row.train_loss as number));
  const weights = [...model.store.trainable.values()];
  const finite = weights.every((w) => w.dataSync().every(Number.isFinite));
  assert.ok(finite, "a skipped batch must not reach the weights");
  trainer.dispose();
  model.dispose();
});

Deno.test("micro-batches match the whole batch", async () => {
  await setupBackend("wasm");
  // Samples [a, b, c, d, a, b, c, d]: each micro-batch of 4 has the batch
  // norm statistics of the whole batch, so the summed gradient must equal
  // the whole batch's gradient.
  const [first] = [...data.batches("train", {
    batchSize: 4,
    seed: 1,
    epoch: 0,
    training: true,
  })];
  const twice = (a: Float32Array) => {
    const out = new Float32Array(a.length * 2);
    out.set(a);
    out.set(a, a.length);
    return out;
  };
  const batch = {
    size: 8,
    audio: twice(first.audio),
    visual: twice(first.visual),
    labels: Int32Array.from([...first.labels, ...first.labels]),
    indices: Int32Array.from([...first.indices, ...first.indices]),
  };
  const weights = [];
  for (const microBatch of [0, 4]) {
    const model = new AudioVisualModel({
      numClasses: 10,
      width: 2,
      audioStem: "imagenet",
      visualStem: "cifar",
      visualChannels: 1,
      seed: 3,
    });
    const trainer = new Trainer(model, createStrategy("camdrop"), data, {
      epochs: 2,
      batchSize: 8,
      lr: 0.1,
      seed: 3,
      microBatch,
    });
    const result = await trainer.trainStep(batch, 1, 0, 0.1);
    assert.ok(Number.isFinite(result.loss));
    weights.push(
      [...model.store.trainable.values()].map((w) => [...w.dataSync()]),
    );
    trainer.dispose();
    model.dispose();
  }
  const whole = weights[0].flat();
  const micro = weights[1].flat();
  assertRelativeError("weights after one step", micro, whole, 1e-4);
});

Deno.test("prepass reads match synchronous reads", async () => {
  await setupBackend("wasm");
  const batches = [...data.batches("train", {
    batchSize: 8,
    seed: 1,
    epoch: 0,
    training: true,
  })];
  const runs = [];
  for (const valueReads of ["sync", "prepass"] as const) {
    const strategy = createStrategy("camdrop", {
      camdrop: { rMax: 0.5, warmupStart: 1 },
    });
    const { model, trainer } = makeTrainer(strategy, data, 1, { valueReads });
    const before = tf.memory().numTensors;
    const results = [];
    for (let step = 0; step < 3; step++) {
      results.push(await trainer.trainStep(batches[step], 0, step, 0.01));
    }
    // Momentum buffers are the only new tensors.
    const slots = model.store.trainable.size;
    assert.equal(tf.memory().numTensors, before + slots, `${valueReads} leaks`);
    const weights = [...model.store.trainable.values()].map((w) => [
      ...w.dataSync(),
    ]);
    runs.push({ results, weights });
    trainer.dispose();
    model.dispose();
  }
  // Both ways compute the same masks and the same taped pass.
  const [sync, prepass] = runs;
  assert.ok(sync.results[0].stats.masked_fraction_audio > 0);
  assert.deepEqual(prepass.results, sync.results);
  assert.deepEqual(prepass.weights, sync.weights);
});

Deno.test("micro-batch auto keeps small models whole", async () => {
  await setupBackend("wasm");
  const { model } = makeTrainer("naive");
  const trainer = new Trainer(model, createStrategy("naive"), data, {
    epochs: 1,
    batchSize: 8,
    microBatch: "auto",
  });
  assert.equal(trainer.microBatch, -1);
  await trainer.trainEpoch();
  assert.equal(trainer.microBatch, 0);
  assert.throws(
    () =>
      new Trainer(model, createStrategy("naive"), data, {
        epochs: 1,
        microBatch: -2,
      }),
    /micro-batch must be "auto" or an integer >= 0/,
  );
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer rejects mismatched data and options", () => {
  const model = new AudioVisualModel({
    numClasses: 6,
    width: 2,
    visualChannels: 1,
  });
  assert.throws(
    () => new Trainer(model, createStrategy("naive"), data, { epochs: 1 }),
    /10 classes but the model was built for 6/,
  );
  model.dispose();
  const { model: ok } = makeTrainer("naive");
  assert.throws(
    () => new Trainer(ok, createStrategy("naive"), data, { epochs: 0 }),
    /epochs must be an integer >= 1/,
  );
  assert.throws(
    () =>
      new Trainer(ok, createStrategy("naive"), data, {
        epochs: 1,
        batchSize: 1,
      }),
    /batch size must be an integer >= 2/,
  );
  assert.throws(
    () =>
      new Trainer(ok, createStrategy("naive"), data, {
        epochs: 1,
        valueReads: "later" as "sync",
      }),
    /valueReads must be "auto", "sync" or "prepass", got "later"/,
  );
  ok.dispose();
});
