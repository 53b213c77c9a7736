import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertRelativeError } from "../_testing.ts";
import { batchNormTraining } from "./batch_norm.ts";
import { AudioVisualModel } from "./model.ts";
import { FUSIONS } from "./fusion.ts";

function input(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, (_, i) => Math.sin(seed + i * 0.37)),
    shape,
  );
}

Deno.test("encoders end in the documented map sizes", async () => {
  await tf.setBackend("cpu");
  const model = new AudioVisualModel({
    numClasses: 4,
    width: 2,
    audioStem: "imagenet",
    visualStem: "cifar",
    visualChannels: 3,
  });
  const audio = input([2, 257, 98, 1], 1) as tf.Tensor4D;
  const visual = input([2, 3, 32, 32, 3], 2) as tf.Tensor5D;
  const maps = model.encode(audio, visual, false);
  // Total stride 32 (imagenet) and 8 (cifar); 16 channels = 8 x width.
  assert.deepEqual(maps.audio.shape, [2, 9, 4, 16]);
  assert.deepEqual(maps.visual.shape, [2, 3, 4, 4, 16]);
  const outputs = model.predict(audio, visual);
  assert.deepEqual(outputs.fused.shape, [2, 4]);
  assert.deepEqual(outputs.probe.audio.shape, [2, 4]);
  tf.dispose([audio, visual, maps.audio, maps.visual, outputs.fused]);
  model.dispose();
});

Deno.test("fusion-split logits add up to concat logits", async () => {
  await tf.setBackend("cpu");
  for (const fusion of ["concat", "sum"] as const) {
    const model = new AudioVisualModel({
      numClasses: 5,
      fusion,
      width: 2,
      visualChannels: 1,
      unimodal: "fusion-split",
    });
    const fa = input([3, 16], 3) as tf.Tensor2D;
    const fv = input([3, 16], 4) as tf.Tensor2D;
    const fused = model.fusion.apply(fa, fv);
    const split = model.fusion.splitLogits(fa, fv);
    assertRelativeError(
      fusion,
      tf.add(split.audio, split.visual).dataSync(),
      fused.dataSync(),
      1e-6,
    );
    model.dispose();
  }
});

Deno.test("fusion-split is rejected for FiLM and gated", () => {
  for (const fusion of ["film", "gated"] as const) {
    assert.throws(
      () =>
        new AudioVisualModel({
          numClasses: 3,
          fusion,
          width: 2,
          unimodal: "fusion-split",
        }),
      /concat and sum fusion only, not "(film|gated)"/,
    );
  }
});

Deno.test("every fusion gives logits of shape [B, K]", async () => {
  await tf.setBackend("cpu");
  for (const fusion of FUSIONS) {
    const model = new AudioVisualModel({
      numClasses: 3,
      fusion,
      width: 2,
      visualChannels: 1,
    });
    const fa = input([2, 16], 5) as tf.Tensor2D;
    const fv = input([2, 16], 6) as tf.Tensor2D;
    assert.deepEqual(model.fusion.apply(fa, fv).shape, [2, 3], fusion);
    model.dispose();
  }
});

Deno.test("equal seeds give equal initial weights", async () => {
  await tf.setBackend("cpu");
  const a = new AudioVisualModel({ numClasses: 3, width: 2, seed: 4 });
  const b = new AudioVisualModel({ numClasses: 3, width: 2, seed: 4 });
  const c = new AudioVisualModel({ numClasses: 3, width: 2, seed: 5 });
  const key = "audio.layer2.0.conv1.kernel";
  const value = (
    m: AudioVisualModel,
  ) => [...m.store.trainable.get(key)!.dataSync()];
  assert.deepEqual(value(a), value(b));
  assert.notDeepEqual(value(a), value(c));
  for (const m of [a, b, c]) m.dispose();
});

Deno.test("batchNormTraining() gradients match tf.moments", async () => {
  await tf.setBackend("cpu");
  const x = input([3, 4, 5, 6], 7) as tf.Tensor4D;
  const gamma = input([6], 8).add(1.5) as tf.Tensor1D;
  const beta = input([6], 9) as tf.Tensor1D;
  const weights = input([3, 4, 5, 6], 10);
  const composed = (xi: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) => {
    const { mean, variance } = tf.moments(xi, [0, 1, 2]);
    return tf.sum(
      tf.mul(
        tf.batchNorm4d(
          xi,
          mean as tf.Tensor1D,
          variance as tf.Tensor1D,
          b,
          g,
          1e-5,
        ),
        weights,
      ),
    );
  };
  const fused = (xi: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) =>
    tf.sum(tf.mul(batchNormTraining(xi, g, b, 1e-5), weights));
  const expected = tf.grads(composed as never)([x, gamma, beta]);
  const actual = tf.grads(fused as never)([x, gamma, beta]);
  for (const [i, name] of ["x", "gamma", "beta"].entries()) {
    assertRelativeError(
      name,
      actual[i].dataSync(),
      expected[i].dataSync(),
      1e-4,
    );
  }
  assertRelativeError(
    "value",
    fused(x, gamma, beta).dataSync(),
    composed(x, gamma, beta).dataSync(),
    1e-5,
  );
});
