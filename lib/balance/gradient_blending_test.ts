import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertNear } from "../_testing.ts";
import type { AudioVisualDataset } from "../data/types.ts";
import type { AudioVisualModel } from "../models/model.ts";
import { Trainer } from "../train/trainer.ts";
import { chooseHeldOut, HeldOutTrainingData } from "./_held_out.ts";
import {
  checkTrainsWithFlatMemory,
  fakeDataset,
  tinyModel,
} from "./_strategy_testing.ts";
import {
  blendingWeights,
  GradientBlending,
  type LossCurve,
} from "./gradient_blending.ts";
import { createStrategy } from "./registry.ts";
import type { BalanceStrategy, EpochContext } from "./strategy.ts";

// Hand values: G = val[0] - val[last], O = gap growth, w = |G / O^2|.
// fused: G = 0.3, O = (0.9 - 0.6) - (1.2 - 1.0) = 0.1, w = 30.
// audio: G = 0.3, O = (0.8 - 0.4) - (1.1 - 1.0) = 0.3, w = 10 / 3.
// visual: G = 0.3, O = (1.9 - 1.5) - (2.2 - 2.0) = 0.2, w = 7.5.
const CURVES: Record<"fused" | "audio" | "visual", LossCurve> = {
  fused: { train: [1.0, 0.6], val: [1.2, 0.9] },
  audio: { train: [1.0, 0.4], val: [1.1, 0.8] },
  visual: { train: [2.0, 1.5], val: [2.2, 1.9] },
};

Deno.test("blendingWeights() matches hand values", () => {
  const total = 30 + 10 / 3 + 7.5;
  const weights = blendingWeights(CURVES);
  assertNear(weights.fused, 30 / total, 1e-9, "fused");
  assertNear(weights.audio, 10 / 3 / total, 1e-9, "audio");
  assertNear(weights.visual, 7.5 / total, 1e-9, "visual");
  assertNear(weights.fused, 0.734694, 1e-6, "fused by hand");

  // Only the first and last points count.
  const longer = blendingWeights({
    ...CURVES,
    fused: { train: [1.0, 5, 0.6], val: [1.2, 7, 0.9] },
  });
  assertNear(longer.fused, weights.fused, 1e-12);
});

Deno.test("blendingWeights() floors the gap growth", () => {
  // Visual gap shrinks (G = 0.3, O = 0.15 - 0.2 = -0.05): floored at
  // 1e-4, so w = 0.3 / 1e-8.
  const shrinking = {
    ...CURVES,
    visual: { train: [2.0, 1.75], val: [2.2, 1.9] },
  };
  const floored = blendingWeights(shrinking);
  const total = 30 + 10 / 3 + 0.3 / 1e-8;
  assertNear(floored.visual, 0.3 / 1e-8 / total, 1e-9, "visual");
  // gapFloor option: at 0.1 the visual w = 0.3 / 0.01 = 30.
  const coarse = blendingWeights(shrinking, 0.1);
  assertNear(coarse.visual, 30 / (30 + 10 / 3 + 30), 1e-9, "gapFloor 0.1");
});

Deno.test("blendingWeights() handles flat and bad curves", () => {
  const flat = { train: [1, 1], val: [1, 1] };
  const equal = blendingWeights({ fused: flat, audio: flat, visual: flat });
  assert.deepEqual(equal, { fused: 1 / 3, audio: 1 / 3, visual: 1 / 3 });
  // A rising validation loss counts by its size: |G / O^2|.
  const rising = blendingWeights({
    ...CURVES,
    audio: { train: [1.0, 0.4], val: [1.1, 1.4] },
  });
  // audio: G = -0.3, O = 1.0 - 0.1 = 0.9, w = 0.3 / 0.81.
  assertNear(rising.audio, 0.3 / 0.81 / (30 + 0.3 / 0.81 + 7.5), 1e-9);
  assert.throws(
    () => blendingWeights({ ...CURVES, audio: { train: [1], val: [1] } }),
    /audio curve needs equal train and val lengths of at least 2/,
  );
});

Deno.test("chooseHeldOut() picks a seeded tenth", () => {
  const a = chooseHeldOut(32, 0.1, 5);
  assert.equal(a.size, 3);
  assert.deepEqual([...chooseHeldOut(32, 0.1, 5)], [...a]);
  assert.notDeepEqual([...chooseHeldOut(32, 0.1, 6)], [...a]);
  assert.equal(chooseHeldOut(32, 0.25, 5).size, 8);
  assert.equal(chooseHeldOut(4, 0.01, 5).size, 1);
  assert.throws(() => chooseHeldOut(1, 0.1, 5), /at least 2/);
});

Deno.test("HeldOutTrainingData leaves samples out", () => {
  const source = fakeDataset(20);
  const heldOut = new Set([2, 7, 11]);
  const data = new HeldOutTrainingData(source, heldOut, 1);
  assert.equal(data.splitSizes.train, 17);
  assert.equal(data.splitSizes.val, 6);
  assert.equal(data.trainingSample.size, 3);
  for (const index of data.trainingSample) assert.ok(!heldOut.has(index));

  const options = {
    batchSize: 5,
    seed: 0,
    epoch: 0,
    training: true,
    dropLast: true,
  };
  const batches = [...data.batches("train", options)];
  // 17 kept samples: three full batches of 5, the last 2 dropped.
  assert.deepEqual(batches.map((b) => b.size), [5, 5, 5]);
  const seen = batches.flatMap((b) => [...b.indices]);
  for (const index of seen) assert.ok(!heldOut.has(index), `${index} held`);
  // Samples keep their data and order when packed again.
  const sourceOrder = [...source.batches("train", options)]
    .flatMap((b) => [...b.indices])
    .filter((index) => !heldOut.has(index));
  assert.deepEqual(seen, sourceOrder.slice(0, 15));
  const b = batches[1];
  for (let i = 0; i < b.size; i++) {
    assert.equal(b.audio[i * 64], b.indices[i]);
    assert.equal(b.visual[i * 64], -b.indices[i]);
    assert.equal(b.labels[i], b.indices[i] % 3);
  }
  const all = [...data.batches("train", { ...options, dropLast: false })];
  assert.equal(all.reduce((n, batch) => n + batch.size, 0), 17);

  const held = [...data.subsetBatches(heldOut, 2)];
  assert.deepEqual(held.map((batch) => batch.size), [2, 1]);
  assert.deepEqual(
    held.flatMap((batch) => [...batch.indices]).sort((x, y) => x - y),
    [2, 7, 11],
  );
  const val = [...data.batches("val", { batchSize: 4, seed: 0, epoch: 0 })];
  assert.deepEqual(val.map((batch) => batch.size), [4, 2]);
});

function epochContext(
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  epoch: number,
  epochs = 20,
): EpochContext {
  return { epoch, epochs, model, dataset, batchSize: 4, seed: 0 };
}

/** Adds `delta` to every probe-head weight, to change the stream losses. */
function nudgeProbes(model: AudioVisualModel, delta: number): void {
  for (const [name, variable] of model.store.trainable) {
    if (name.startsWith("probe.") || name.startsWith("fusion.")) {
      tf.tidy(() => variable.assign(tf.add(variable, delta)));
    }
  }
}

Deno.test("GradientBlending re-estimates weights per window", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const strategy = new GradientBlending({ windowEpochs: 2 });
  assert.equal(strategy.detachProbes, false);
  const data = strategy.trainingData(fakeDataset(30), 0);
  assert.ok(data instanceof HeldOutTrainingData);
  assert.equal(data.heldOut.size, 3);
  assert.deepEqual(strategy.lossWeights(), {
    fused: 1 / 3,
    audio: 1 / 3,
    visual: 1 / 3,
  });

  // Epoch 0 measures the start point; epoch 1 is inside the window.
  const start = strategy.measure(model);
  strategy.onEpochStart(epochContext(model, data, 0));
  nudgeProbes(model, 0.3);
  strategy.onEpochStart(epochContext(model, data, 1));
  assert.deepEqual(strategy.stepStats().weight_fused, 1 / 3);

  // Epoch 2 closes the window: weights from the two points.
  const end = strategy.measure(model);
  strategy.onEpochStart(epochContext(model, data, 2));
  const expected = blendingWeights({
    fused: {
      train: [start.train.fused, end.train.fused],
      val: [start.val.fused, end.val.fused],
    },
    audio: {
      train: [start.train.audio, end.train.audio],
      val: [start.val.audio, end.val.audio],
    },
    visual: {
      train: [start.train.visual, end.train.visual],
      val: [start.val.visual, end.val.visual],
    },
  });
  const weights = strategy.lossWeights();
  assertNear(weights.fused, expected.fused, 1e-9, "fused");
  assertNear(weights.audio, expected.audio, 1e-9, "audio");
  assertNear(weights.visual, expected.visual, 1e-9, "visual");
  assert.notEqual(weights.fused, 1 / 3);
  assertNear(weights.fused + weights.audio + weights.visual, 1, 1e-12);

  // State round trip.
  const copy = new GradientBlending({ windowEpochs: 2 });
  copy.setState(strategy.getState());
  assert.deepEqual(copy.lossWeights(), weights);
  model.dispose();
});

Deno.test("GradientBlending default window scales with epochs", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const strategy = new GradientBlending();
  const data = strategy.trainingData(fakeDataset(30), 0);
  // 20 epochs: window round(10 x 20 / 100) = 2, so epoch 1 changes nothing
  // and epoch 2 re-estimates.
  strategy.onEpochStart(epochContext(model, data, 0, 20));
  nudgeProbes(model, 0.3);
  strategy.onEpochStart(epochContext(model, data, 1, 20));
  assert.equal(strategy.lossWeights().fused, 1 / 3);
  strategy.onEpochStart(epochContext(model, data, 2, 20));
  assert.notEqual(strategy.lossWeights().fused, 1 / 3);
  model.dispose();
});

Deno.test("GradientBlending holds out heldOutFraction", async () => {
  await tf.setBackend("cpu");
  const small = new GradientBlending({ heldOutFraction: 0.1 });
  const large = new GradientBlending({ heldOutFraction: 0.3 });
  const a = small.trainingData(fakeDataset(30), 0) as HeldOutTrainingData;
  const b = large.trainingData(fakeDataset(30), 0) as HeldOutTrainingData;
  assert.equal(a.heldOut.size, 3);
  assert.equal(b.heldOut.size, 9);
  assert.equal(b.splitSizes.train, 21);
  // The seed picks the samples.
  const c = small.trainingData(fakeDataset(30), 1) as HeldOutTrainingData;
  assert.notDeepEqual([...c.heldOut], [...a.heldOut]);
});

Deno.test("GradientBlending evalBatchSize keeps the losses", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const one = new GradientBlending({ evalBatchSize: 1 });
  const many = new GradientBlending({ evalBatchSize: 64 });
  one.trainingData(fakeDataset(30), 0);
  many.trainingData(fakeDataset(30), 0);
  // Evaluation-mode batch norm makes losses independent of batching.
  const a = one.measure(model);
  const b = many.measure(model);
  for (const stream of ["fused", "audio", "visual"] as const) {
    assertNear(a.val[stream], b.val[stream], 1e-5, `val ${stream}`);
    assertNear(a.train[stream], b.train[stream], 1e-5, `train ${stream}`);
  }
  model.dispose();
});

Deno.test("GradientBlending rejects invalid use", async () => {
  await tf.setBackend("cpu");
  assert.throws(
    () => new GradientBlending({ windowEpochs: 1.5 }),
    /window epochs must be an integer in \[1, inf\), got 1.5/,
  );
  assert.throws(
    () => new GradientBlending({ heldOutFraction: 1 }),
    /held-out fraction must be a number in \(0, 1\), got 1/,
  );
  assert.throws(() => new GradientBlending({ gapFloor: 0 }), /gap floor/);
  assert.throws(
    () => new GradientBlending({ evalBatchSize: 0 }),
    /evaluation batch size/,
  );
  const model = tinyModel("concat");
  const strategy = new GradientBlending();
  assert.throws(() => strategy.measure(model), /call trainingData\(\)/);
  strategy.trainingData(fakeDataset(), 0);
  assert.throws(
    () => strategy.onEpochStart(epochContext(model, fakeDataset(), 0)),
    /held-out samples would be trained on/,
  );
  model.dispose();
});

/** Trains one step with plain SGD and returns which encoders moved. */
async function encodersMoved(strategy: BalanceStrategy): Promise<{
  audio: boolean;
  visual: boolean;
  probe: boolean;
}> {
  const model = tinyModel("concat");
  const data = fakeDataset(8);
  const trainer = new Trainer(model, strategy, data, {
    epochs: 1,
    batchSize: 4,
    lr: 0.1,
    momentum: 0,
    weightDecay: 0,
  });
  const names = [
    "audio.stem.kernel",
    "visual.stem.kernel",
    "probe.audio.kernel",
  ];
  const before = names.map((name) =>
    model.store.trainable.get(name)!.dataSync().slice()
  );
  const batch = [...trainer.dataset.batches("train", {
    batchSize: 4,
    seed: 0,
    epoch: 0,
    training: true,
  })][0];
  await trainer.trainStep(batch, 0, 0, 0.1);
  const moved = names.map((name, i) => {
    const after = model.store.trainable.get(name)!.dataSync();
    return after.some((value, j) => value !== before[i][j]);
  });
  trainer.dispose();
  model.dispose();
  return { audio: moved[0], visual: moved[1], probe: moved[2] };
}

Deno.test("Trainer honours lossWeights and detachProbes", async () => {
  await tf.setBackend("cpu");
  // Only the audio probe loss counts.
  const audioOnly = { fused: 0, audio: 1, visual: 0 };
  const base = { name: "test", config: () => ({}) };
  // Attached probes: the audio probe loss trains the audio encoder only.
  const attached = await encodersMoved({
    ...base,
    detachProbes: false,
    lossWeights: () => audioOnly,
  });
  assert.ok(attached.audio, "audio encoder did not move");
  assert.ok(!attached.visual, "visual encoder moved");
  assert.ok(attached.probe, "audio probe did not move");
  // Detached probes (the default): no encoder moves.
  const detached = await encodersMoved({
    ...base,
    lossWeights: () => audioOnly,
  });
  assert.ok(!detached.audio, "audio encoder moved");
  assert.ok(!detached.visual, "visual encoder moved");
  assert.ok(detached.probe, "audio probe did not move");
  // Without lossWeights the fused loss trains both encoders.
  const plain = await encodersMoved(base);
  assert.ok(plain.audio, "audio encoder did not move");
  assert.ok(plain.visual, "visual encoder did not move");
});

Deno.test("GradientBlending trains with flat memory", async () => {
  const strategy = createStrategy("gb");
  const check = await checkTrainsWithFlatMemory(strategy);
  assert.ok(Number.isFinite(check.stats.weight_fused));
  assertNear(
    check.stats.weight_fused + check.stats.weight_audio +
      check.stats.weight_visual,
    1,
    1e-9,
  );
  assert.equal(check.row.train_weight_fused, 1 / 3);
});
