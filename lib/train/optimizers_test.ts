import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertNear } from "../_testing.ts";
import { createOptimizer, stepDecay } from "./optimizers.ts";

Deno.test("SGD matches PyTorch's update by hand", async () => {
  await tf.setBackend("cpu");
  const p = tf.variable(tf.tensor1d([1, -2]));
  const variables = new Map([["p", p]]);
  const sgd = createOptimizer("sgd", { momentum: 0.9, weightDecay: 0.1 });
  // Step 1: g' = g + 0.1 p = [0.5 + 0.1, 1 - 0.2] = [0.6, 0.8]; buf = g'.
  sgd.step(variables, { p: tf.tensor1d([0.5, 1]) }, 0.1);
  const after1 = [1 - 0.1 * 0.6, -2 - 0.1 * 0.8];
  assertNear(p.dataSync()[0], after1[0], 1e-6);
  assertNear(p.dataSync()[1], after1[1], 1e-6);
  // Step 2: g' = g + 0.1 p; buf = 0.9 buf + g'; p -= lr buf.
  const g2 = [0.5 + 0.1 * after1[0], 1 + 0.1 * after1[1]];
  const buf = [0.9 * 0.6 + g2[0], 0.9 * 0.8 + g2[1]];
  sgd.step(variables, { p: tf.tensor1d([0.5, 1]) }, 0.1);
  assertNear(p.dataSync()[0], after1[0] - 0.1 * buf[0], 1e-6);
  assertNear(p.dataSync()[1], after1[1] - 0.1 * buf[1], 1e-6);
  sgd.dispose();
  p.dispose();
});

Deno.test("Adam matches the bias-corrected update", async () => {
  await tf.setBackend("cpu");
  const p = tf.variable(tf.tensor1d([0.5]));
  const adam = createOptimizer("adam", { weightDecay: 0 });
  adam.step(new Map([["p", p]]), { p: tf.tensor1d([2]) }, 0.01);
  // m_hat = g, v_hat = g^2: step = lr g / (|g| + eps) = 0.01.
  assertNear(p.dataSync()[0], 0.5 - 0.01 * 2 / (2 + 1e-8), 1e-6);
  adam.dispose();
  p.dispose();
});

Deno.test("optimizer state survives snapshot and restore", async () => {
  await tf.setBackend("cpu");
  const run = async (restoreHalfway: boolean) => {
    const p = tf.variable(tf.tensor1d([1, 2, 3]));
    const variables = new Map([["p", p]]);
    let sgd = createOptimizer("sgd");
    sgd.step(variables, { p: tf.tensor1d([1, 1, 1]) }, 0.1);
    if (restoreHalfway) {
      const saved = await sgd.snapshot();
      sgd.dispose();
      sgd = createOptimizer("sgd");
      sgd.restore(saved);
    }
    sgd.step(variables, { p: tf.tensor1d([1, 1, 1]) }, 0.1);
    const values = [...p.dataSync()];
    sgd.dispose();
    p.dispose();
    return values;
  };
  assert.deepEqual(await run(true), await run(false));
});

Deno.test("createOptimizer() rejects bad options", () => {
  assert.throws(() => createOptimizer("rmsprop"), /Unknown optimizer/);
  assert.throws(() => createOptimizer("sgd", { momentum: 1 }), /momentum/);
  assert.throws(
    () => createOptimizer("sgd", { weightDecay: -1 }),
    /Weight decay/,
  );
});

Deno.test("stepDecay() decays every n epochs", () => {
  assertNear(stepDecay(1e-3, 0, 70, 0.1), 1e-3, 1e-15);
  assertNear(stepDecay(1e-3, 69, 70, 0.1), 1e-3, 1e-15);
  assertNear(stepDecay(1e-3, 70, 70, 0.1), 1e-4, 1e-15);
  assertNear(stepDecay(0.01, 14, 14, 0.1), 0.001, 1e-15);
  assertNear(stepDecay(0.01, 99, 0, 0.1), 0.01, 1e-15);
});
