import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { assertNear } from "../_testing.ts";
import {
  checkTrainsWithFlatMemory,
  disposeForward,
  handForward,
  stepContext,
  tinyModel,
} from "./_strategy_testing.ts";
import {
  Opm,
  opmDropProbabilities,
  type OpmOptions,
  randomSpatialMask,
  sampleDropFactors,
  survivorScale,
} from "./opm.ts";
import { createStrategy } from "./registry.ts";

// True-class scores of handForward: audio dominates.
const SCORE_AUDIO = Math.exp(2) / (Math.exp(2) + 2) + Math.E / (Math.E + 2);
const SCORE_VISUAL = 2 / 3;

Deno.test("opmDropProbabilities() matches hand values", async () => {
  await tf.setBackend("cpu");
  // s^a / s^v = 3: r^a = tanh(2), q^a = 0.5 (1 + 0.5 tanh(2)) = 0.7410.
  const q = opmDropProbabilities(3, 1, 0.5, 0.5);
  assertNear(q.ratioAudio, Math.tanh(2), 1e-12, "r_a");
  assert.equal(q.ratioVisual, 0);
  assertNear(q.audio, 0.5 * (1 + 0.5 * Math.tanh(2)), 1e-12, "q_a");
  assertNear(q.audio, 0.74101, 1e-5, "q_a by hand");
  assert.equal(q.visual, 0);

  // Visual dominant: s^v / s^a = 1.5, r^v = tanh(0.5).
  const visual = opmDropProbabilities(2, 3, 0.5, 0.5);
  assert.equal(visual.audio, 0);
  assertNear(visual.visual, 0.5 * (1 + 0.5 * Math.tanh(0.5)), 1e-12, "q_v");

  // Equal scores: r = 0, so nothing is dropped whatever q_base is.
  const equal = opmDropProbabilities(2, 2, 0.9, 0.5);
  assert.equal(equal.audio, 0);
  assert.equal(equal.visual, 0);

  // q_base and lambda change q; large values clip at 1.
  assertNear(opmDropProbabilities(3, 1, 0.2, 0.5).audio, 0.2 * 1.48201, 1e-5);
  assertNear(
    opmDropProbabilities(3, 1, 0.5, 0).audio,
    0.5,
    1e-12,
    "lambda 0",
  );
  assert.equal(opmDropProbabilities(3, 1, 0.9, 1).audio, 1);
  assert.throws(() => opmDropProbabilities(0, 1, 0.5, 0.5), /positive/);
});

Deno.test("survivorScale() is 1 / (1 - theta)", () => {
  // theta = (16 * 0.6 + 16 * 0) / 32 = 0.3.
  assertNear(survivorScale([16, 16], [0.6, 0]), 1 / 0.7, 1e-12);
  // Unequal sizes weight by d_m: theta = (10 * 0.5 + 30 * 0.1) / 40 = 0.2.
  assertNear(survivorScale([10, 30], [0.5, 0.1]), 1.25, 1e-12);
  assert.equal(survivorScale([16, 16], [0, 0]), 1);
  assert.equal(survivorScale([16, 16], [1, 1]), 0);
});

Deno.test("sampleDropFactors() drops at rate q", () => {
  const factors = sampleDropFactors(new Random(3), 20000, 0.3, 2);
  let zeros = 0;
  for (const value of factors) {
    assert.ok(value === 0 || value === 2, `unexpected factor ${value}`);
    if (value === 0) zeros++;
  }
  // Standard error sqrt(0.3 * 0.7 / 20000) = 0.0032.
  assertNear(zeros / factors.length, 0.3, 0.015, "drop rate");
});

Deno.test("randomSpatialMask() zeroes round(r P) positions", () => {
  const random = new Random(6);
  // P = 16, r = 0.2: n = floor(3.2 + 0.5) = 3 per sample.
  const mask = randomSpatialMask(random, 4, 16, 0.2);
  for (let b = 0; b < 4; b++) {
    const zeros = mask.slice(b * 16, b * 16 + 16).filter((v) => v === 0);
    assert.equal(zeros.length, 3, `sample ${b}`);
  }
  // Positions are spread uniformly: each of 16 is hit about 1/16 x 3 of
  // the time over many samples.
  const many = randomSpatialMask(random, 8000, 16, 0.2);
  const hits = new Array(16).fill(0);
  many.forEach((value, i) => {
    if (value === 0) hits[i % 16]++;
  });
  for (const count of hits) assertNear(count / 8000, 3 / 16, 0.02);
  assert.equal(randomSpatialMask(random, 2, 16, 0).indexOf(0), -1);
  assert.throws(() => randomSpatialMask(random, 1, 4, 1.5), /ratio/);
});

/** Runs `steps` steps of `strategy` on the hand forward; counts drops. */
function executionRate(
  options: OpmOptions,
  steps: number,
  epoch = 10,
): number {
  const model = tinyModel("film");
  const strategy = new Opm(options);
  const forward = handForward(model);
  const context = stepContext(model, epoch, 100, 17);
  let executed = 0;
  for (let step = 0; step < steps; step++) {
    tf.tidy(() => {
      strategy.transformMaps(forward, context);
    });
    executed += strategy.stepStats().drop_executed;
  }
  disposeForward(forward);
  model.dispose();
  return executed / steps;
}

Deno.test("Opm executes with probability p_exe", async () => {
  await tf.setBackend("cpu");
  // Standard error sqrt(0.7 * 0.3 / 1500) = 0.012.
  assertNear(executionRate({}, 1500), 0.7, 0.04, "default p_exe");
  assertNear(executionRate({ pExe: 0.2 }, 1500), 0.2, 0.04, "p_exe 0.2");
  assert.equal(executionRate({ pExe: 0 }, 50), 0);
  assert.equal(executionRate({ pExe: 1 }, 50), 1);
});

Deno.test("Opm waits out the warm-up epochs", async () => {
  await tf.setBackend("cpu");
  // Default warm-up: 5 of 100 epochs.
  assert.equal(executionRate({ pExe: 1 }, 10, 4), 0);
  assert.equal(executionRate({ pExe: 1 }, 10, 5), 1);
  // warmupEpochs option.
  assert.equal(executionRate({ pExe: 1, warmupEpochs: 0 }, 10, 0), 1);
  assert.equal(executionRate({ pExe: 1, warmupEpochs: 20 }, 10, 10), 0);
});

Deno.test("Opm zeroes or scales whole samples", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const strategy = new Opm({ pExe: 1, qBase: 0.6 });
  const forward = handForward(model);
  const context = stepContext(model, 10, 100, 4);
  const qAudio = Math.min(
    1,
    0.6 * (1 + 0.5 * Math.tanh(SCORE_AUDIO / SCORE_VISUAL - 1)),
  );
  const scale = 1 / (1 - qAudio / 2);
  const audio = forward.maps.audio.arraySync();
  const visual = forward.maps.visual.dataSync();
  let droppedSamples = 0;
  for (let trial = 0; trial < 20; trial++) {
    const maps = strategy.transformMaps(forward, context);
    const stats = strategy.stepStats();
    assertNear(stats.drop_prob_audio, qAudio, 1e-6, "q_a");
    assert.equal(stats.drop_prob_visual, 0);
    assertNear(stats.survivor_scale, scale, 1e-6, "scale");
    const outAudio = maps.audio.arraySync();
    for (let b = 0; b < 2; b++) {
      const first = outAudio[b][0][0][0];
      const dropped = first === 0;
      if (dropped) droppedSamples++;
      const factor = dropped ? 0 : scale;
      assertNear(first, factor * audio[b][0][0][0], 1e-5, "audio value");
      assertNear(
        outAudio[b][3][2][7],
        factor * audio[b][3][2][7],
        1e-5,
        "whole sample",
      );
    }
    // Visual (not dominant) survives everywhere and is scaled.
    const outVisual = maps.visual.dataSync();
    for (const i of [0, 100, 511]) {
      assertNear(outVisual[i], scale * visual[i], 1e-5, "visual value");
    }
    tf.dispose([maps.audio, maps.visual]);
  }
  // 40 draws at q = 0.7: both extremes are practically impossible.
  assert.ok(droppedSamples > 10, `only ${droppedSamples} of 40 dropped`);
  assert.ok(droppedSamples < 40, "every sample dropped");
  disposeForward(forward);
  model.dispose();
});

Deno.test("Opm spatial mode zeroes random positions", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const forward = handForward(model);
  const feature = new Opm({ pExe: 1 });
  const spatial = new Opm({ pExe: 1, mode: "spatial" });
  const maps = spatial.transformMaps(forward, stepContext(model, 10));
  const q = spatial.stepStats().drop_prob_audio;
  // 16 positions per sample: n = floor(16 q + 0.5) zeroed in all channels.
  const n = Math.floor(16 * q + 0.5);
  const values = maps.audio.arraySync();
  for (let b = 0; b < 2; b++) {
    let zeros = 0;
    for (const row of values[b]) {
      for (const channels of row) if (channels.every((v) => v === 0)) zeros++;
    }
    assert.equal(zeros, n, `sample ${b}`);
  }
  assertNear(spatial.stepStats().dropped_fraction_audio, n / 16, 1e-12);
  const featureMaps = feature.transformMaps(forward, stepContext(model, 10));
  assert.notDeepEqual(featureMaps.audio.arraySync(), values);
  assert.equal(spatial.config().mode, "spatial");
  tf.dispose([maps.audio, maps.visual, featureMaps.audio, featureMaps.visual]);
  disposeForward(forward);
  model.dispose();
});

Deno.test("Opm records its unimodal logits", async () => {
  await tf.setBackend("cpu");
  for (const [fusion, kind] of [["film", "probe"], ["sum", "fusion-split"]]) {
    const model = tinyModel(fusion as "film" | "sum");
    const strategy = new Opm();
    assert.match(String(strategy.config().unimodal), /^auto/);
    const forward = handForward(model);
    tf.tidy(() => {
      strategy.transformMaps(forward, stepContext(model, 10));
    });
    assert.equal(strategy.config().unimodal, kind);
    disposeForward(forward);
    model.dispose();
  }
});

Deno.test("Opm rejects invalid options", () => {
  assert.throws(
    () => new Opm({ qBase: 1.5 }),
    /OPM: q_base must be a number in \[0, 1\], got 1.5/,
  );
  assert.throws(() => new Opm({ lambda: -1 }), /lambda/);
  assert.throws(() => new Opm({ pExe: -0.1 }), /p_exe/);
  assert.throws(() => new Opm({ warmupEpochs: -1 }), /warm-up epochs/);
  assert.throws(
    () => new Opm({ mode: "grid" as never }),
    /"feature" or "spatial", got "grid"/,
  );
});

Deno.test("Opm trains with flat memory", async () => {
  const check = await checkTrainsWithFlatMemory(
    createStrategy("opm", { opm: { pExe: 1 } }),
  );
  assert.ok(Number.isFinite(check.stats.drop_prob_audio));
  assert.equal(typeof check.row.train_drop_executed, "number");
});
