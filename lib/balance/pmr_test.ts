import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertNear } from "../_testing.ts";
import type { AudioVisualDataset } from "../data/types.ts";
import type { AudioVisualModel } from "../models/model.ts";
import {
  checkTrainsWithFlatMemory,
  disposeForward,
  fakeDataset,
  handForward,
  stepContext,
  tinyModel,
} from "./_strategy_testing.ts";
import {
  classMeanFeatures,
  Pmr,
  prototypeLogits,
  type Prototypes,
  updatePrototypes,
} from "./pmr.ts";
import { createStrategy } from "./registry.ts";
import type { TrainingForward } from "./strategy.ts";

Deno.test("prototypeLogits() is minus the distance", async () => {
  await tf.setBackend("cpu");
  const features = tf.tensor2d([[0, 0], [3, 4]]);
  const prototypes = tf.tensor2d([[0, 0], [3, 0]]);
  const logits = prototypeLogits(features, prototypes).arraySync();
  // Distance 0 is clamped to sqrt(1e-12) = 1e-6.
  assertNear(logits[0][0], -1e-6, 1e-9);
  assertNear(logits[0][1], -3, 1e-6);
  assertNear(logits[1][0], -5, 1e-6);
  assertNear(logits[1][1], -4, 1e-6);
  tf.dispose([features, prototypes]);
});

Deno.test("updatePrototypes() mixes by momentum", () => {
  const previous: Prototypes = {
    audio: Float32Array.from([1, 1, 2, 2]),
    visual: Float32Array.from([0, 0, 4, 4]),
    numClasses: 2,
    dim: 2,
  };
  const means = {
    audio: Float32Array.from([3, 5, 0, 0]),
    visual: Float32Array.from([2, 2, 0, 0]),
    numClasses: 2,
    dim: 2,
    counts: Int32Array.from([4, 0]),
  };
  // Momentum 0 replaces seen classes; class 1 was not seen and stays.
  const replaced = updatePrototypes(previous, means, 0);
  assert.deepEqual([...replaced.audio], [3, 5, 2, 2]);
  assert.deepEqual([...replaced.visual], [2, 2, 4, 4]);
  // Momentum 0.5: halfway.
  const mixed = updatePrototypes(previous, means, 0.5);
  assert.deepEqual([...mixed.audio], [2, 3, 2, 2]);
  // Without previous prototypes, unseen classes are zero.
  const first = updatePrototypes(undefined, means, 0.5);
  assert.deepEqual([...first.audio], [3, 5, 0, 0]);
});

function epochContext(
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  epoch = 0,
) {
  return { epoch, epochs: 100, model, dataset, batchSize: 4, seed: 0 };
}

Deno.test("Pmr prototypes are class means of early batches", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const dataset = fakeDataset(40);
  const batches = [...dataset.batches("train", {
    batchSize: 4,
    seed: 0,
    epoch: 0,
    training: true,
    dropLast: true,
  })];
  const shapes = { audio: dataset.audioShape, visual: dataset.visualShape };

  // 10 batches of 4: the first ceil(0.1 x 10) = 1 batch.
  const strategy = new Pmr();
  assert.equal(strategy.prototypes, undefined);
  strategy.onEpochStart(epochContext(model, dataset));
  const expected = classMeanFeatures(model, batches.slice(0, 1), shapes);
  assert.deepEqual([...strategy.prototypes!.audio], [...expected.audio]);
  assert.deepEqual([...strategy.prototypes!.visual], [...expected.visual]);

  // By hand: the class-k row is the mean pooled feature of its samples.
  const batch = batches[0];
  const pooled = tf.tidy(() => {
    const audio = tf.tensor4d(batch.audio, [4, 8, 8, 1]);
    const visual = tf.tensor5d(batch.visual, [4, 1, 8, 8, 1]);
    return model.pool(model.encode(audio, visual, false)).audio.arraySync();
  });
  const label = batch.labels[0];
  const members = [...batch.labels.keys()].filter((i) =>
    batch.labels[i] === label
  );
  for (const j of [0, 5, 15]) {
    const mean = members.reduce((sum, i) => sum + pooled[i][j], 0) /
      members.length;
    assertNear(strategy.prototypes!.audio[label * 16 + j], mean, 1e-5);
  }

  // prototypeFraction 0.5: 5 batches, other means.
  const half = new Pmr({ prototypeFraction: 0.5 });
  half.onEpochStart(epochContext(model, dataset));
  const halfExpected = classMeanFeatures(model, batches.slice(0, 5), shapes);
  assert.deepEqual([...half.prototypes!.audio], [...halfExpected.audio]);
  assert.notDeepEqual([...half.prototypes!.audio], [...expected.audio]);

  // momentum 0.5 mixes the next epoch's means with these.
  const slow = new Pmr({ momentum: 0.5 });
  slow.onEpochStart(epochContext(model, dataset, 0));
  slow.onEpochStart(epochContext(model, dataset, 1));
  const fast = new Pmr();
  fast.onEpochStart(epochContext(model, dataset, 1));
  assert.notDeepEqual([...slow.prototypes!.audio], [...fast.prototypes!.audio]);
  model.dispose();
});

/**
 * Sets prototypes so that audio features sit on their class prototype
 * and visual features on the wrong one (or the reverse).
 */
function rigPrototypes(
  strategy: Pmr,
  forward: TrainingForward,
  strong: "audio" | "visual",
): void {
  const audio = forward.pooled.audio.arraySync();
  const visual = forward.pooled.visual.arraySync();
  const far = new Array(16).fill(10);
  const right = (rows: number[][]) => [...rows[0], ...rows[1], ...far];
  const wrong = (rows: number[][]) => [...rows[1], ...rows[0], ...far];
  strategy.setState({
    audio: strong === "audio" ? right(audio) : wrong(audio),
    visual: strong === "visual" ? right(visual) : wrong(visual),
    numClasses: 3,
    dim: 16,
  });
}

/** alpha x mean CE of minus-distance logits, computed in plain numbers. */
function handPrototypeLoss(
  features: number[][],
  prototypes: number[],
  labels: Int32Array,
  alpha: number,
): number {
  let total = 0;
  features.forEach((feature, i) => {
    const logits = [0, 1, 2].map((k) => {
      let squared = 0;
      for (let j = 0; j < 16; j++) {
        squared += (feature[j] - prototypes[k * 16 + j]) ** 2;
      }
      return -Math.sqrt(Math.max(squared, 1e-12));
    });
    const max = Math.max(...logits);
    const logSum = max +
      Math.log(logits.reduce((s, z) => s + Math.exp(z - max), 0));
    total += logSum - logits[labels[i]];
  });
  return alpha * total / features.length;
}

Deno.test("Pmr adds the weaker modality's loss", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const forward = handForward(model);
  const fused = tf.zeros([2, 3]) as tf.Tensor2D;
  const context = stepContext(model, 10);
  for (const strong of ["audio", "visual"] as const) {
    const weak = strong === "audio" ? "visual" : "audio";
    for (const alpha of [2, 0.5]) {
      const strategy = new Pmr({ alpha });
      rigPrototypes(strategy, forward, strong);
      const loss = strategy.extraLoss(forward, fused, context)!;
      const stats = strategy.stepStats();
      if (strong === "audio") assert.ok(stats.proto_ratio_audio > 1);
      else assert.ok(stats.proto_ratio_audio < 1);
      assert.equal(stats[`proto_weight_${weak}`], alpha);
      assert.equal(stats[`proto_weight_${strong}`], 0);
      const expected = handPrototypeLoss(
        forward.pooled[weak].arraySync(),
        [...strategy.prototypes![weak]],
        context.labels,
        alpha,
      );
      assertNear(loss.dataSync()[0], expected, 1e-4, `${weak} loss`);
      loss.dispose();
    }
  }
  tf.dispose(fused);
  disposeForward(forward);
  model.dispose();
});

Deno.test("Pmr loss reaches only the weak features", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const forward = handForward(model);
  const fused = tf.zeros([2, 3]) as tf.Tensor2D;
  const strategy = new Pmr();
  rigPrototypes(strategy, forward, "audio");
  const context = stepContext(model, 10);
  const loss = (fa: tf.Tensor, fv: tf.Tensor) =>
    strategy.extraLoss(
      {
        ...forward,
        pooled: { audio: fa as tf.Tensor2D, visual: fv as tf.Tensor2D },
      },
      fused,
      context,
    )!;
  const visualGrad = tf.grad((fv) => loss(forward.pooled.audio, fv))(
    forward.pooled.visual,
  );
  assert.ok(tf.max(tf.abs(visualGrad)).dataSync()[0] > 0);
  // No path leads from the audio features to the loss.
  assert.throws(
    () =>
      tf.grad((fa) => loss(fa, forward.pooled.visual))(forward.pooled.audio),
    /Cannot compute gradient/,
  );
  tf.dispose([visualGrad, fused]);
  disposeForward(forward);
  model.dispose();
});

Deno.test("Pmr modulation epochs bound the loss", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const forward = handForward(model);
  const fused = tf.zeros([2, 3]) as tf.Tensor2D;
  const applies = (strategy: Pmr, epoch: number, epochs = 100) => {
    rigPrototypes(strategy, forward, "audio");
    const context = { ...stepContext(model, epoch), epochs };
    const loss = strategy.extraLoss(forward, fused, context);
    loss?.dispose();
    return loss !== undefined;
  };
  // Default: 70 of 100 epochs, so 7 of 10.
  assert.ok(applies(new Pmr(), 70));
  assert.ok(!applies(new Pmr(), 71));
  assert.ok(applies(new Pmr(), 7, 10));
  assert.ok(!applies(new Pmr(), 8, 10));
  assert.ok(!applies(new Pmr({ modulationEnd: 20 }), 21));
  assert.ok(applies(new Pmr({ modulationEnd: 90 }), 80));
  assert.ok(!applies(new Pmr({ modulationStart: 5 }), 4));
  assert.ok(applies(new Pmr({ modulationStart: 5 }), 5));
  // No prototypes yet: no loss.
  assert.equal(
    new Pmr().extraLoss(forward, fused, stepContext(model)),
    undefined,
  );
  tf.dispose(fused);
  disposeForward(forward);
  model.dispose();
});

Deno.test("Pmr state round trip and invalid options", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const strategy = new Pmr();
  assert.equal(strategy.getState(), null);
  strategy.onEpochStart(epochContext(model, fakeDataset(40)));
  const copy = new Pmr();
  copy.setState(JSON.parse(JSON.stringify(strategy.getState())));
  assert.deepEqual([...copy.prototypes!.visual], [
    ...strategy.prototypes!.visual,
  ]);
  model.dispose();

  assert.throws(
    () => new Pmr({ alpha: -1 }),
    /PMR: alpha must be a number in \[0, inf\), got -1/,
  );
  assert.throws(() => new Pmr({ momentum: 1 }), /momentum .*\[0, 1\)/);
  assert.throws(() => new Pmr({ prototypeFraction: 0 }), /prototype fraction/);
  assert.throws(() => new Pmr({ modulationEnd: -1 }), /modulation end/);
  assert.equal(new Pmr().config().unimodal, "prototype");
});

Deno.test("Pmr trains with flat memory", async () => {
  const check = await checkTrainsWithFlatMemory(createStrategy("pmr"));
  assert.ok(Number.isFinite(check.stats.proto_ratio_audio));
  assert.equal(
    check.stats.proto_weight_audio + check.stats.proto_weight_visual,
    2,
  );
});
