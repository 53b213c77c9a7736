import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { classActivationMaps } from "../cam/gradcam.ts";
import { topPositiveMask } from "../cam/mask.ts";
import { assertNear } from "../_testing.ts";
import { AudioVisualModel } from "../models/model.ts";
import { CamDrop, camDropMasks, maskRatio, warmupRMax } from "./camdrop.ts";
import {
  dominanceFromConfidences,
  dominanceRatios,
  trueClassConfidences,
} from "./dominance.ts";
import { createStrategy } from "./registry.ts";

await tf.setBackend("cpu");

Deno.test("dominanceFromConfidences() matches hand values", () => {
  // y_v / y_a = 0.25 / 0.5 = 0.5 and 0.2 / 0.8 = 0.25: mean 0.375.
  const rho = dominanceFromConfidences([0.5, 0.8], [0.25, 0.2]);
  assertNear(rho.visual, 0.375, 1e-12, "rho_v");
  // rho_a is the inverse of the mean, not the mean of inverses (3).
  assertNear(rho.audio, 1 / 0.375, 1e-12, "rho_a");
});

Deno.test("dominanceFromConfidences() clamps at 1e-8", () => {
  const rho = dominanceFromConfidences([0, 0.5], [0.5, 0]);
  // 0.5 / 1e-8 and 1e-8 / 0.5, averaged.
  assertNear(rho.visual, (0.5 / 1e-8 + 1e-8 / 0.5) / 2, 1, "rho_v");
  assert.throws(() => dominanceFromConfidences([], []), /non-empty/);
  assert.throws(() => dominanceFromConfidences([1], [1, 2]), /equal/);
});

Deno.test("dominanceRatios() uses softmax of the true class", () => {
  const audio = tf.tensor2d([[2, 0, 0], [0, 1, 0]]);
  const visual = tf.tensor2d([[0, 0, 0], [1, 1, 1]]);
  const labels = new Int32Array([0, 1]);
  const ya = [Math.exp(2) / (Math.exp(2) + 2), Math.E / (Math.E + 2)];
  const yv = [1 / 3, 1 / 3];
  const conf = trueClassConfidences(audio, labels);
  assertNear(conf[0], ya[0], 1e-6);
  assertNear(conf[1], ya[1], 1e-6);
  const rho = dominanceRatios(audio, visual, labels);
  assertNear(rho.visual, (yv[0] / ya[0] + yv[1] / ya[1]) / 2, 1e-6);
  tf.dispose([audio, visual]);
});

Deno.test("maskRatio() is sigmoid(log rho) times r_max", () => {
  assertNear(maskRatio(3, 0.3), 0.75 * 0.3, 1e-12);
  assertNear(maskRatio(1, 0.3), 0.15, 1e-12);
  const rho = 0.2;
  const sigmoid = 1 / (1 + Math.exp(-Math.log(rho)));
  assertNear(maskRatio(rho, 0.5), sigmoid * 0.5, 1e-12);
  assert.throws(() => maskRatio(0, 0.3), /positive and finite/);
  assert.throws(() => maskRatio(Infinity, 0.3), /positive and finite/);
});

Deno.test("warmupRMax() ramps linearly from s r_max", () => {
  assertNear(warmupRMax(0.3, 0, 0.25, 10), 0.075, 1e-12);
  assertNear(warmupRMax(0.3, 5, 0.25, 10), 0.3 * (0.25 + 0.75 * 0.5), 1e-12);
  assertNear(warmupRMax(0.3, 10, 0.25, 10), 0.3, 1e-12);
  assertNear(warmupRMax(0.3, 50, 0.25, 10), 0.3, 1e-12);
  assertNear(warmupRMax(0.1, 3, 0.5, 4), 0.1 * (0.5 + 0.5 * 0.75), 1e-12);
  assertNear(warmupRMax(0.3, 0, 0.25, 0), 0.3, 1e-12);
});

Deno.test("CamDrop scales warm-up with epoch count", () => {
  const strategy = new CamDrop({ rMax: 0.4 });
  const context = (epoch: number, epochs: number) => ({
    epoch,
    epochs,
    model: undefined as never,
    dataset: undefined as never,
    batchSize: 16,
    seed: 0,
  });
  // 20 epochs: E = 2.
  strategy.onEpochStart(context(1, 20));
  assertNear(
    (strategy.getState() as { rMaxEffective: number }).rMaxEffective,
    0.4 * (0.25 + 0.75 * 0.5),
    1e-12,
  );
  strategy.onEpochStart(context(2, 20));
  assertNear(
    (strategy.getState() as { rMaxEffective: number }).rMaxEffective,
    0.4,
    1e-12,
  );
  // 100 epochs: E = 10.
  strategy.onEpochStart(context(2, 100));
  assertNear(
    (strategy.getState() as { rMaxEffective: number }).rMaxEffective,
    0.4 * (0.25 + 0.75 * 0.2),
    1e-12,
  );
});

Deno.test("CamDrop rejects invalid options", () => {
  assert.throws(() => new CamDrop({ rMax: 0 }), /r_max must lie in \(0, 1\)/);
  assert.throws(() => new CamDrop({ rMax: 1 }), /r_max/);
  assert.throws(() => new CamDrop({ warmupStart: 2 }), /warm-up start/);
  assert.throws(() => new CamDrop({ warmupEpochs: -1 }), /warm-up epochs/);
  assert.throws(
    () => new CamDrop({ target: "max" as never }),
    /"label" or "predicted"/,
  );
  assert.throws(() => createStrategy("dropout"), /Unknown method "dropout"/);
});

function tinyModel(fusion: "concat" | "film" = "concat") {
  return new AudioVisualModel({
    numClasses: 3,
    fusion,
    width: 2,
    audioStem: "cifar",
    visualStem: "cifar",
    visualChannels: 1,
    seed: 3,
  });
}

function tinyMaps() {
  const random = new Random(11);
  const audio = tf.tensor4d(
    Float32Array.from({ length: 2 * 4 * 4 * 16 }, () => random.next()),
    [2, 4, 4, 16],
  );
  const visual = tf.tensor5d(
    Float32Array.from({ length: 2 * 2 * 4 * 4 * 16 }, () => random.next()),
    [2, 2, 4, 4, 16],
  );
  return { audio, visual };
}

Deno.test("camDropMasks() zeroes top CAM positions", () => {
  const model = tinyModel();
  const maps = tinyMaps();
  const labels = new Int32Array([0, 2]);
  const masks = camDropMasks(model, maps, labels, { audio: 0.25, visual: 0.1 });
  assert.deepEqual(masks.audio.shape, [2, 4, 4, 1]);
  assert.deepEqual(masks.visual.shape, [2, 2, 4, 4, 1]);
  const audioMask = masks.audio.dataSync();
  const visualMask = masks.visual.dataSync();
  // n = floor(0.25 * 16 + 0.5) = 4 per sample, unless fewer positive.
  for (let b = 0; b < 2; b++) {
    const zeros = audioMask.slice(b * 16, b * 16 + 16).filter((v) => v === 0);
    assert.ok(zeros.length <= 4, `sample ${b}: ${zeros.length} > 4 zeros`);
  }
  // Visual jointly over T x h x w = 32: n = floor(3.2 + 0.5) = 3.
  for (let b = 0; b < 2; b++) {
    const zeros = visualMask.slice(b * 32, b * 32 + 32).filter((v) => v === 0);
    assert.ok(zeros.length <= 3, `sample ${b}: ${zeros.length} > 3 zeros`);
  }
  assert.ok(audioMask.some((v) => v === 0), "no audio position was masked");

  // The masks equal top-n masks of the CAMs of the fused true-class score.
  const [audioCam, visualCam] = classActivationMaps(
    ([a, v]) => {
      const pooled = model.pool({
        audio: a as tf.Tensor4D,
        visual: v as tf.Tensor5D,
      });
      return model.fusion.apply(pooled.audio, pooled.visual);
    },
    [maps.audio, maps.visual],
    labels,
  );
  assert.deepEqual(
    [...audioMask],
    [...topPositiveMask(audioCam.dataSync(), 16, 4)],
  );
  assert.deepEqual(
    [...visualMask],
    [...topPositiveMask(visualCam.dataSync(), 32, 3)],
  );
  tf.dispose([audioCam, visualCam]);
  tf.dispose([masks.audio, masks.visual, maps.audio, maps.visual]);
  model.dispose();
});

Deno.test("camDropMasks() perFrame changes the mask", () => {
  const model = tinyModel();
  const maps = tinyMaps();
  const labels = new Int32Array([1, 0]);
  const ratios = { audio: 0.2, visual: 0.3 };
  const joint = camDropMasks(model, maps, labels, ratios);
  const perFrame = camDropMasks(model, maps, labels, ratios, {
    perFrame: true,
  });
  const jointValues = joint.visual.dataSync();
  const frameValues = perFrame.visual.dataSync();
  // Per frame: n = floor(0.3 * 16 + 0.5) = 5 per frame, at most.
  for (let f = 0; f < 4; f++) {
    const zeros = frameValues.slice(f * 16, f * 16 + 16).filter((v) => v === 0);
    assert.ok(zeros.length <= 5);
  }
  assert.notDeepEqual([...jointValues], [...frameValues]);
  tf.dispose([
    joint.audio,
    joint.visual,
    perFrame.audio,
    perFrame.visual,
    maps.audio,
    maps.visual,
  ]);
  model.dispose();
});

Deno.test("camDropMasks() target option changes the mask", () => {
  const model = tinyModel("film");
  const maps = tinyMaps();
  const predicted = tf.tidy(() => {
    const pooled = model.pool(maps);
    return tf.argMax(model.fusion.apply(pooled.audio, pooled.visual), 1)
      .dataSync();
  });
  // Labels chosen to differ from the predictions.
  const labels = Int32Array.from(predicted, (p) => (p + 1) % 3);
  const ratios = { audio: 0.5, visual: 0.5 };
  const byLabel = camDropMasks(model, maps, labels, ratios);
  const byPrediction = camDropMasks(model, maps, labels, ratios, {
    target: "predicted",
  });
  const byPredictedLabel = camDropMasks(
    model,
    maps,
    Int32Array.from(predicted),
    ratios,
  );
  assert.notDeepEqual(
    [...byLabel.audio.dataSync(), ...byLabel.visual.dataSync()],
    [...byPrediction.audio.dataSync(), ...byPrediction.visual.dataSync()],
  );
  assert.deepEqual(
    [...byPrediction.audio.dataSync()],
    [...byPredictedLabel.audio.dataSync()],
  );
  tf.dispose([
    byLabel.audio,
    byLabel.visual,
    byPrediction.audio,
    byPrediction.visual,
    byPredictedLabel.audio,
    byPredictedLabel.visual,
    maps.audio,
    maps.visual,
  ]);
  model.dispose();
});
