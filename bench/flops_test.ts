import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { AudioVisualModel } from "../lib/mod.ts";
import { forwardFlops } from "./flops.ts";

Deno.test("forwardFlops matches ResNet18 at 224 x 224", async () => {
  await tf.setBackend("cpu");
  const model = new AudioVisualModel({
    numClasses: 6,
    width: 64,
    visualChannels: 3,
  });
  const flops = forwardFlops(model, [257, 299], [1, 224, 224, 3]);
  // ResNet18's convolutions at 224 x 224 x 3: 1,813,561,344 multiply-adds,
  // as forward hooks count them on the PyTorch model of bench/torch_step.py.
  assert.equal(flops.visual, 2 * 1_813_561_344);
  // The same hooks on a 1-channel 257 x 299 input.
  assert.equal(flops.audio, 5_738_683_136);
  // Concat head 1024 -> 6 and two probes 512 -> 6.
  assert.equal(flops.heads, 2 * (1024 * 6 + 2 * 512 * 6));
  assert.equal(flops.total, flops.audio + flops.visual + flops.heads);
  model.dispose();
});

Deno.test("forwardFlops scales with frames", async () => {
  await tf.setBackend("cpu");
  const model = new AudioVisualModel({
    numClasses: 10,
    width: 4,
    visualStem: "cifar",
    visualChannels: 1,
  });
  const oneFrame = forwardFlops(model, [257, 98], [1, 32, 32, 1]);
  const threeFrames = forwardFlops(model, [257, 98], [3, 32, 32, 1]);
  assert.equal(threeFrames.visual, 3 * oneFrame.visual);
  assert.equal(threeFrames.audio, oneFrame.audio);
  // The repro "default" model; PyTorch's hook count gave the same total.
  assert.equal(oneFrame.total, 14_817_672);
  model.dispose();
});

Deno.test("forwardFlops counts every head of sum fusion", async () => {
  await tf.setBackend("cpu");
  const model = new AudioVisualModel({
    numClasses: 5,
    width: 2,
    fusion: "sum",
  });
  const flops = forwardFlops(model, [64, 64], [1, 32, 32, 3]);
  const heads = flops.layers
    .filter((layer) => layer.shape.length === 2)
    .map((layer) => layer.kernel);
  assert.deepEqual(heads.sort(), [
    "fusion.audio.kernel",
    "fusion.visual.kernel",
    "probe.audio.kernel",
    "probe.visual.kernel",
  ]);
  model.dispose();
});
