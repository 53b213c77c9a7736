import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertNear } from "../_testing.ts";
import { fakeDataset, tinyModel } from "../balance/_strategy_testing.ts";
import { createStrategy } from "../balance/registry.ts";
import { Trainer } from "../train/trainer.ts";
import { evaluateModel } from "./evaluation.ts";

// The fake dataset's test split has 6 samples with labels 0, 1, 2, 0, 1, 2.
const TEST_LABELS = [0, 1, 2, 0, 1, 2];

Deno.test("evaluateModel() agrees with Trainer.evaluate", async () => {
  await tf.setBackend("cpu");
  const dataset = fakeDataset();
  const model = tinyModel("concat");
  try {
    const result = await evaluateModel(model, dataset, { probeEpochs: 2 });
    const trainer = new Trainer(model, createStrategy("naive"), dataset, {
      epochs: 1,
      evalBatchSize: 64,
    });
    const logged = await trainer.evaluate("test");
    trainer.dispose();
    assert.equal(result.samples, 6);
    assertNear(result.accuracy, logged.test_acc as number, 1e-12, "accuracy");

    const matrix = result.confusionMatrix;
    const diagonal = matrix.reduce((sum, row, i) => sum + row[i], 0);
    assertNear(result.accuracy, diagonal / 6, 1e-12, "trace / samples");
    for (let c = 0; c < 3; c++) {
      const support = TEST_LABELS.filter((label) => label === c).length;
      const row = matrix[c];
      assert.equal(row.reduce((a, b) => a + b, 0), support, `row ${c}`);
      assertNear(
        result.perClassAccuracy[c]!,
        row[c] / support,
        1e-12,
        `class ${c}`,
      );
    }
    assert.ok(result.macroF1 >= 0, `macro-F1 ${result.macroF1}`);
    assert.ok(result.macroF1 <= 1, `macro-F1 ${result.macroF1}`);
    assert.deepEqual(result.classNames, ["a", "b", "c"]);
  } finally {
    model.dispose();
  }
});

Deno.test("evaluateModel() corrupts only the named modality", async () => {
  await tf.setBackend("cpu");
  const dataset = fakeDataset();
  const model = tinyModel("audio-only");
  try {
    const result = await evaluateModel(model, dataset, { probeEpochs: 1 });
    // The audio-only head never reads the frames.
    assert.equal(result.missingModality.visual, result.accuracy);
    assert.equal(result.noisyModality.visual, result.accuracy);
    // Zero audio gives every sample the same logits, so one class is
    // predicted for all six samples: two of them are right.
    assertNear(result.missingModality.audio, 2 / 6, 1e-12, "audio zeroed");
  } finally {
    model.dispose();
  }
});

Deno.test("evaluateModel() scales noise by the input std", async () => {
  await tf.setBackend("cpu");
  const dataset = fakeDataset();
  const model = tinyModel("concat");
  try {
    // Test audio values are index + (i mod 64) / 100 for indices 0..5,
    // stored as float32, hence the tolerance.
    const values: number[] = [];
    for (let index = 0; index < 6; index++) {
      for (let i = 0; i < 64; i++) values.push(index + i / 100);
    }
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) /
      values.length;
    const silent = await evaluateModel(model, dataset, {
      noiseStd: 0,
      probeEpochs: 1,
    });
    assertNear(
      silent.noisyModality.inputStd.audio,
      Math.sqrt(variance),
      1e-6,
      "audio input std",
    );
    assert.equal(silent.noisyModality.relativeStd, 0);
    assert.equal(silent.noisyModality.audio, silent.accuracy);
    assert.equal(silent.noisyModality.visual, silent.accuracy);
    await assert.rejects(
      () => evaluateModel(model, dataset, { noiseStd: -1 }),
      /noiseStd must be a number >= 0, got -1/,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("evaluateModel() repeats and leaks nothing", async () => {
  await tf.setBackend("cpu");
  const dataset = fakeDataset();
  const model = tinyModel("sum");
  try {
    const before = tf.memory().numTensors;
    const first = await evaluateModel(model, dataset, { probeEpochs: 2 });
    assert.equal(tf.memory().numTensors, before);
    const second = await evaluateModel(model, dataset, { probeEpochs: 2 });
    assert.deepEqual(second, first);
    for (const modality of ["audio", "visual"] as const) {
      const accuracy = first.linearProbe[modality];
      assert.ok(accuracy >= 0, `${modality} probe ${accuracy}`);
      assert.ok(accuracy <= 1, `${modality} probe ${accuracy}`);
    }
    assert.equal(first.linearProbe.epochs, 2);
  } finally {
    model.dispose();
  }
});
