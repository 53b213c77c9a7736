import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { type FeatureSet, linearProbeAccuracy } from "./linear_probe.ts";

/**
 * Three classes in 4 dimensions: class c sits at 5 * e_c plus unit noise,
 * with a constant fourth column, so a linear classifier separates them.
 */
function clusters(n: number, seed: number): FeatureSet {
  const random = new Random(seed);
  const dim = 4;
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    labels[i] = label;
    for (let j = 0; j < 3; j++) {
      features[i * dim + j] = (j === label ? 5 : 0) + random.normal();
    }
    features[i * dim + 3] = 7;
  }
  return { features, labels, dim };
}

Deno.test("linearProbeAccuracy() separates clusters", async () => {
  await tf.setBackend("cpu");
  const accuracy = await linearProbeAccuracy(
    clusters(90, 1),
    clusters(60, 2),
    3,
    {
      epochs: 10,
    },
  );
  assert.equal(accuracy, 1);
});

Deno.test("linearProbeAccuracy() is near chance on shuffled labels", async () => {
  await tf.setBackend("cpu");
  const train = clusters(90, 1);
  const test = clusters(300, 2);
  // Labels that ignore the features: the test label is unrelated to the
  // cluster, so no classifier can beat chance by much.
  const random = new Random(3);
  const unrelated = { ...test, labels: test.labels.map(() => random.int(3)) };
  const accuracy = await linearProbeAccuracy(train, unrelated, 3, {
    epochs: 5,
  });
  assert.ok(accuracy > 0.2, `accuracy ${accuracy}`);
  assert.ok(accuracy < 0.47, `accuracy ${accuracy}`);
});

Deno.test("linearProbeAccuracy() repeats with one seed", async () => {
  await tf.setBackend("cpu");
  // Overlapping clusters, so that the result depends on the training run.
  const train = clusters(60, 4);
  train.features = train.features.map((v) => v / 4);
  const test = clusters(60, 5);
  test.features = test.features.map((v) => v / 4);
  const first = await linearProbeAccuracy(train, test, 3, {
    epochs: 2,
    seed: 7,
  });
  const second = await linearProbeAccuracy(train, test, 3, {
    epochs: 2,
    seed: 7,
  });
  assert.equal(first, second);
});

Deno.test("linearProbeAccuracy() leaks no tensors", async () => {
  await tf.setBackend("cpu");
  const before = tf.memory().numTensors;
  await linearProbeAccuracy(clusters(30, 1), clusters(30, 2), 3, { epochs: 2 });
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("linearProbeAccuracy() rejects invalid input", async () => {
  const train = clusters(9, 1);
  const wide = { ...clusters(9, 2), dim: 3 };
  await assert.rejects(
    () => linearProbeAccuracy(train, wide, 3),
    /training features have 4 dimensions but test features 3/,
  );
  const empty = { features: new Float32Array(0), labels: new Int32Array(0) };
  await assert.rejects(
    () => linearProbeAccuracy({ ...empty, dim: 4 }, train, 3),
    /training set is empty/,
  );
  await assert.rejects(
    () => linearProbeAccuracy(train, train, 3, { epochs: 0 }),
    /epochs must be an integer >= 1, got 0/,
  );
  await assert.rejects(
    () => linearProbeAccuracy(train, train, 3, { lr: -1 }),
    /lr must be > 0, got -1/,
  );
  await assert.rejects(
    () => linearProbeAccuracy(train, train, 3, { batchSize: 0.5 }),
    /batchSize must be an integer >= 1, got 0.5/,
  );
});

Deno.test("linearProbeAccuracy() is NaN without test rows", async () => {
  await tf.setBackend("cpu");
  const test = { features: new Float32Array(0), labels: new Int32Array(0) };
  const accuracy = await linearProbeAccuracy(clusters(9, 1), {
    ...test,
    dim: 4,
  }, 3);
  assert.ok(Number.isNaN(accuracy));
});
