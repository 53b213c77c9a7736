import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { assertNear } from "../_testing.ts";
import type { AudioVisualModel } from "../models/model.ts";
import {
  checkTrainsWithFlatMemory,
  disposeForward,
  HAND_LABELS,
  handForward,
  stepContext,
  tinyModel,
} from "./_strategy_testing.ts";
import {
  isEncoderConvKernel,
  modulateEncoderGradients,
  ogmCoefficients,
  OgmGe,
} from "./ogm.ts";
import { createStrategy } from "./registry.ts";

const LABELS = HAND_LABELS;
// s^a = e^2 / (e^2 + 2) + e / (e + 2) and s^v = 2 / 3 for the hand logits.
const SCORE_AUDIO = Math.exp(2) / (Math.exp(2) + 2) + Math.E / (Math.E + 2);
const SCORE_VISUAL = 2 / 3;

/** Random gradients for every trainable variable of `model`. */
function randomGradients(model: AudioVisualModel): Record<string, tf.Tensor> {
  const random = new Random(2);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, variable] of model.store.trainable) {
    const values = Float32Array.from(
      { length: variable.size },
      () => random.next() - 0.5,
    );
    out[name] = tf.tensor(values, variable.shape);
  }
  return out;
}

Deno.test("ogmCoefficients() below, at and above rho = 1", async () => {
  await tf.setBackend("cpu");
  // rho^v = 0.5: audio is modulated with 1 - tanh(0.8 * 2).
  const below = ogmCoefficients(4, 2, 0.8);
  assertNear(below.ratioVisual, 0.5, 1e-12);
  assertNear(below.audio, 1 - Math.tanh(1.6), 1e-12, "k_a");
  assert.equal(below.visual, 1);
  assert.equal(below.modulated, "audio");

  // rho^v = 2: visual is modulated with 1 - tanh(0.8 * 2).
  const above = ogmCoefficients(2, 4, 0.8);
  assertNear(above.visual, 1 - Math.tanh(1.6), 1e-12, "k_v");
  assert.equal(above.audio, 1);
  assert.equal(above.modulated, "visual");

  // At rho^v = 1 audio is modulated; just above 1 the modulation jumps to
  // visual with the same coefficient 1 - tanh(0.8) = 0.3360.
  const at = ogmCoefficients(3, 3, 0.8);
  assert.equal(at.modulated, "audio");
  assertNear(at.audio, 1 - Math.tanh(0.8), 1e-12, "k_a at 1");
  assert.equal(at.visual, 1);
  const justAbove = ogmCoefficients(3, 3 * (1 + 1e-9), 0.8);
  assert.equal(justAbove.modulated, "visual");
  assert.equal(justAbove.audio, 1);
  assertNear(justAbove.visual, 0.33596, 1e-5, "k_v above 1");

  assert.throws(() => ogmCoefficients(0, 1, 0.8), /positive and finite/);
});

Deno.test("ogmCoefficients() alpha changes k", () => {
  assertNear(ogmCoefficients(4, 2, 0.4).audio, 1 - Math.tanh(0.8), 1e-12);
  assert.notEqual(
    ogmCoefficients(4, 2, 0.4).audio,
    ogmCoefficients(4, 2, 0.8).audio,
  );
});

Deno.test("modulateEncoderGradients() scales one encoder", async () => {
  await tf.setBackend("cpu");
  const gradients = {
    "audio.stem.kernel": tf.tensor4d([1, -2, 3, 4], [1, 1, 2, 2]),
    "audio.stem.bn.gamma": tf.tensor1d([1, 2]),
    "visual.stem.kernel": tf.tensor4d([5, 6, 7, 8], [1, 1, 2, 2]),
    "fusion.fc.kernel": tf.tensor2d([1, 2, 3, 4], [2, 2]),
  };
  const out = modulateEncoderGradients(gradients, "audio", 0.25);
  assert.deepEqual([...out["audio.stem.kernel"].dataSync()], [
    0.25,
    -0.5,
    0.75,
    1,
  ]);
  // Everything else is the same tensor, untouched.
  assert.equal(out["audio.stem.bn.gamma"], gradients["audio.stem.bn.gamma"]);
  assert.equal(out["visual.stem.kernel"], gradients["visual.stem.kernel"]);
  assert.equal(out["fusion.fc.kernel"], gradients["fusion.fc.kernel"]);
  assert.ok(
    isEncoderConvKernel(
      "visual.layer1.0.conv1.kernel",
      out["audio.stem.kernel"],
      "visual",
    ),
  );
  assert.ok(
    !isEncoderConvKernel(
      "probe.audio.kernel",
      gradients["fusion.fc.kernel"],
      "audio",
    ),
  );
  tf.dispose([...Object.values(gradients), out["audio.stem.kernel"]]);
});

Deno.test("modulateEncoderGradients() noise has std(g) + 1e-8", async () => {
  await tf.setBackend("cpu");
  // 36,864 values uniform in [-1, 1]: std 1 / sqrt(3).
  const source = new Random(4);
  const shape = [3, 3, 64, 64];
  const values = Float32Array.from(
    { length: 3 * 3 * 64 * 64 },
    () => 2 * source.next() - 1,
  );
  const gradient = tf.tensor(values, shape);
  const k = 0.3;
  const out = modulateEncoderGradients(
    { "visual.layer4.1.conv2.kernel": gradient },
    "visual",
    k,
    new Random(8),
  );
  const result = out["visual.layer4.1.conv2.kernel"].dataSync();
  let mean = 0;
  let meanG = 0;
  for (let i = 0; i < values.length; i++) {
    mean += result[i] - k * values[i];
    meanG += values[i];
  }
  mean /= values.length;
  meanG /= values.length;
  let variance = 0;
  let varianceG = 0;
  for (let i = 0; i < values.length; i++) {
    variance += (result[i] - k * values[i] - mean) ** 2;
    varianceG += (values[i] - meanG) ** 2;
  }
  const std = Math.sqrt(variance / (values.length - 1));
  const expected = Math.sqrt(varianceG / (values.length - 1)) + 1e-8;
  // Standard error of a sample std is about std / sqrt(2n) = 0.4 %.
  assertNear(std / expected, 1, 0.02, "noise std / (std(g) + 1e-8)");
  assertNear(mean / expected, 0, 0.03, "noise mean / std");

  // The same seed gives the same noise; another seed another.
  const again = modulateEncoderGradients(
    { "visual.layer4.1.conv2.kernel": gradient },
    "visual",
    k,
    new Random(8),
  );
  assert.deepEqual(
    again["visual.layer4.1.conv2.kernel"].dataSync().slice(0, 8),
    result.slice(0, 8),
  );
  tf.dispose([gradient, out["visual.layer4.1.conv2.kernel"]]);
  tf.dispose(again["visual.layer4.1.conv2.kernel"]);
});

Deno.test("OgmGe changes only the dominant encoder", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const strategy = new OgmGe();
  const context = stepContext(model);
  const forward = handForward(model);
  const gradients = randomGradients(model);

  const maps = strategy.transformMaps(forward, context);
  assert.equal(maps, forward.maps, "maps must pass through unchanged");
  // rho^v = s^v / s^a < 1: audio dominates and is modulated.
  const rho = SCORE_VISUAL / SCORE_AUDIO;
  const kAudio = 1 - Math.tanh(0.8 / rho);
  const stats = strategy.stepStats();
  assertNear(stats.score_ratio_visual, rho, 1e-6, "rho_v");
  assertNear(stats.coeff_audio, kAudio, 1e-6, "k_a");
  assert.equal(stats.coeff_visual, 1);
  assert.equal(stats.modulated, 1);

  const out = strategy.transformGradients(gradients, context);
  let changed = 0;
  for (const name of Object.keys(gradients)) {
    const isAudioConv = name.startsWith("audio.") && gradients[name].rank === 4;
    if (isAudioConv) {
      changed++;
      assert.notEqual(out[name], gradients[name], `${name} unchanged`);
    } else {
      assert.equal(out[name], gradients[name], `${name} changed`);
    }
  }
  // 1 stem + 16 block convs + 3 downsample convs in a ResNet18.
  assert.equal(changed, 20);
  assert.equal(strategy.config().unimodal, "probe");
  tf.dispose(Object.values(out));
  tf.dispose(Object.values(gradients));
  disposeForward(forward);
  model.dispose();
});

Deno.test("OGM without noise gives k g exactly", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const strategy = createStrategy("ogm") as OgmGe;
  assert.equal(strategy.name, "ogm");
  assert.equal(createStrategy("ogm-ge").name, "ogm-ge");
  const context = stepContext(model);
  const forward = handForward(model);
  strategy.transformMaps(forward, context);
  const k = 1 - Math.tanh(0.8 * SCORE_AUDIO / SCORE_VISUAL);
  const g = tf.tensor4d([0.5, -1, 2, 4], [1, 1, 2, 2]);
  const out = strategy.transformGradients({ "audio.stem.kernel": g }, context);
  const scaled = out["audio.stem.kernel"].dataSync();
  [0.5, -1, 2, 4].forEach((value, i) =>
    assertNear(scaled[i], k * value, 1e-6, `element ${i}`)
  );
  tf.dispose([g, out["audio.stem.kernel"]]);
  disposeForward(forward);
  model.dispose();
});

Deno.test("OgmGe uses fusion-split logits under concat", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("concat");
  const strategy = new OgmGe({ alpha: 0.5 });
  const context = stepContext(model);
  const forward = handForward(model);
  strategy.transformMaps(forward, context);

  const expected = tf.tidy(() => {
    const split = model.fusion.splitLogits(
      forward.pooled.audio,
      forward.pooled.visual,
    );
    const oneHot = tf.oneHot(tf.tensor1d(LABELS, "int32"), 3);
    const sa = tf.sum(tf.mul(tf.softmax(split.audio), oneHot)).dataSync()[0];
    const sv = tf.sum(tf.mul(tf.softmax(split.visual), oneHot)).dataSync()[0];
    return tf.tensor1d([sv / sa]);
  });
  const rho = expected.dataSync()[0];
  const stats = strategy.stepStats();
  assertNear(stats.score_ratio_visual, rho, 1e-5, "rho from split logits");
  assert.notEqual(
    Math.abs(stats.score_ratio_visual - SCORE_VISUAL / SCORE_AUDIO) < 1e-6,
    true,
  );
  const k = rho > 1 ? stats.coeff_visual : stats.coeff_audio;
  assertNear(k, 1 - Math.tanh(0.5 * (rho > 1 ? rho : 1 / rho)), 1e-5);
  assert.equal(strategy.config().unimodal, "fusion-split");
  tf.dispose(expected);
  disposeForward(forward);
  model.dispose();
});

Deno.test("OgmGe modulation epochs bound the change", async () => {
  await tf.setBackend("cpu");
  const model = tinyModel("film");
  const forward = handForward(model);
  const g = tf.tensor4d([1, 2, 3, 4], [1, 1, 2, 2]);
  const changes = (strategy: OgmGe, epoch: number, epochs: number) => {
    const context = stepContext(model, epoch, epochs);
    strategy.transformMaps(forward, context);
    const out = strategy.transformGradients(
      { "audio.stem.kernel": g },
      context,
    );
    const changed = out["audio.stem.kernel"] !== g;
    if (changed) out["audio.stem.kernel"].dispose();
    return changed;
  };
  // Default end: 50 of 100 epochs, so epoch 5 of 10 is in, 6 is out.
  assert.ok(changes(new OgmGe(), 5, 10));
  assert.ok(!changes(new OgmGe(), 6, 10));
  assert.ok(changes(new OgmGe(), 50, 100));
  assert.ok(!changes(new OgmGe(), 51, 100));
  assert.equal(new OgmGe().stepStats().modulated, undefined);
  // modulationEnd and modulationStart options.
  assert.ok(changes(new OgmGe({ modulationEnd: 8 }), 8, 10));
  assert.ok(!changes(new OgmGe({ modulationStart: 3 }), 2, 10));
  assert.ok(changes(new OgmGe({ modulationStart: 3 }), 3, 10));
  const outside = new OgmGe({ modulationEnd: 1 });
  changes(outside, 2, 10);
  assert.equal(outside.stepStats().coeff_audio, 1);
  assert.equal(outside.stepStats().modulated, 0);
  g.dispose();
  disposeForward(forward);
  model.dispose();
});

Deno.test("OgmGe rejects invalid options", () => {
  assert.throws(
    () => new OgmGe({ alpha: 0 }),
    /alpha must be a number in \(0, inf\), got 0/,
  );
  assert.throws(() => new OgmGe({ alpha: NaN }), /alpha/);
  assert.throws(
    () => new OgmGe({ modulationStart: -1 }),
    /modulation start must be a number in \[0, inf\), got -1/,
  );
  assert.throws(
    () => createStrategy("ogm", { ogm: { modulationEnd: -2 } }),
    /OGM: modulation end/,
  );
  assert.deepEqual(new OgmGe().config().alpha, 0.8);
});

Deno.test("OgmGe trains with flat memory", async () => {
  const check = await checkTrainsWithFlatMemory(createStrategy("ogm-ge"));
  assert.ok(Number.isFinite(check.stats.coeff_audio));
  assert.ok(Number.isFinite(check.row.train_coeff_visual as number));
});
