import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { AudioVisualDataset, SampleBatch } from "../data/types.ts";
import { AudioVisualModel } from "../models/mod.ts";
import { figure1 } from "./figure1.ts";
import { figure1Data, maskedCamShare } from "./figure1_data.ts";
import { figure3, type Figure3Run, summarizeByRMax } from "./figure3.ts";

await tf.setBackend("cpu");

function run(
  method: string,
  rMax: number,
  seed: number,
  accuracy: number,
  dataset = "embedded",
): Figure3Run {
  return {
    config: { method, seed, data: { dataset }, camdrop: { rMax } },
    best: { test_acc: accuracy, val_acc: accuracy - 0.1 },
  };
}

Deno.test("summarizeByRMax() averages over seeds", () => {
  const summaries = summarizeByRMax([
    run("camdrop", 0.3, 0, 0.6),
    run("camdrop", 0.1, 0, 0.5),
    run("camdrop", 0.3, 1, 0.7),
    run("naive", 0.3, 0, 0.4),
    run("ogm", 0.3, 0, 0.9),
  ]);
  assert.equal(summaries.length, 3, "ogm runs are ignored");
  assert.ok(Number.isNaN(summaries[0].rMax), "naive reference first");
  assert.equal(summaries[0].mean, 0.4);
  assert.deepEqual(
    summaries.slice(1).map((s) => [s.rMax, s.n]),
    [[0.1, 1], [0.3, 2]],
  );
  assert.ok(Number.isNaN(summaries[1].std), "one seed has no spread");
  assert.ok(Math.abs(summaries[2].mean - 0.65) < 1e-12);
  // Sample standard deviation of 0.6 and 0.7: sqrt(0.005).
  assert.ok(Math.abs(summaries[2].std - Math.sqrt(0.005)) < 1e-12);
});

Deno.test("summarizeByRMax() reads the requested split", () => {
  const [summary] = summarizeByRMax([run("camdrop", 0.2, 0, 0.6)], "val");
  assert.ok(Math.abs(summary.mean - 0.5) < 1e-12);
});

Deno.test("figure3() draws percent with error bars", () => {
  const figure = figure3([
    run("camdrop", 0.1, 0, 0.5),
    run("camdrop", 0.1, 1, 0.6),
    run("camdrop", 0.3, 0, 0.7),
    run("camdrop", 0.3, 1, 0.7),
    run("naive", 0.3, 0, 0.45),
    run("camdrop", 0.1, 0, 0.3, "ave"),
  ]);
  assert.equal(figure.data.length, 3, "two datasets and one reference");
  const traces = figure.data as {
    name: string;
    x: number[];
    y: number[];
    error_y?: { array: number[] };
  }[];
  const byName = (name: string) => traces.find((t) => t.name === name)!;
  assert.deepEqual(traces.map((t) => t.name), [
    "CAMDrop, ave",
    "CAMDrop, embedded",
    "Naive fusion, embedded",
  ]);
  const embedded = byName("CAMDrop, embedded");
  assert.deepEqual(embedded.x, [0.1, 0.3]);
  assert.ok(Math.abs(embedded.y[0] - 55) < 1e-9);
  const spread = 100 * Math.sqrt(0.005);
  assert.ok(Math.abs(embedded.error_y!.array[0] - spread) < 1e-9);
  assert.deepEqual(byName("Naive fusion, embedded").y, [45, 45]);
  // The ave point comes from one seed: a bar of 0, not NaN.
  assert.deepEqual(byName("CAMDrop, ave").error_y!.array, [0]);
});

Deno.test("figure3() rejects runs without CAMDrop", () => {
  assert.throws(() => figure3([run("naive", 0.3, 0, 0.4)]), /no CAMDrop run/);
});

function smallDataset(): AudioVisualDataset {
  return {
    name: "synthetic",
    classNames: ["a", "b", "c"],
    audioShape: [64, 32],
    visualShape: [1, 32, 32, 1],
    splitSizes: { train: 4, val: 4, test: 4 },
    contentHash: "",
    batches: () => [],
    describe: () => ({}),
  };
}

function smallBatch(size: number): SampleBatch {
  const fill = (n: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  return {
    size,
    audio: fill(size * 64 * 32),
    visual: fill(size * 32 * 32),
    labels: Int32Array.from({ length: size }, (_, i) => i % 3),
    indices: Int32Array.from({ length: size }, (_, i) => i),
  };
}

Deno.test("figure1Data() masks the requested ratio", () => {
  const dataset = smallDataset();
  const model = new AudioVisualModel({
    numClasses: 3,
    width: 2,
    audioStem: "cifar",
    visualStem: "cifar",
    visualChannels: 1,
  });
  const before = tf.memory().numTensors;
  const data = figure1Data(model, dataset, smallBatch(4), {
    samples: 2,
    ratio: 0.25,
  });
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  assert.equal(data.samples.length, 2);
  assert.equal(data.ratio, 0.25);
  assert.equal(data.secondsPerFrame, 159 / 16000);
  assert.equal(data.hertzPerBin, 16000 / 512);
  const [first] = data.samples;
  assert.equal(first.className, "a");
  assert.equal(first.audio.input.length, 64);
  assert.equal(first.audio.input[0].length, 32);
  assert.equal(first.visual.input.length, 32);
  // A CIFAR-stem ResNet18 downsamples by 8: 64 x 32 -> 8 x 4.
  const zeros = (grid: number[][]) => grid.flat().filter((v) => v === 0).length;
  assert.equal(first.audio.cam.length, 8);
  assert.equal(zeros(first.audio.randomMask), 8, "0.25 of 32 positions");
  assert.ok(zeros(first.audio.camDropMask) <= 8);
  assert.ok(Math.max(...first.audio.cam.flat()) <= 1);
  const share = maskedCamShare(first.audio);
  assert.ok(share.camDrop >= share.random, "CAMDrop takes the top CAM");
  assert.throws(
    () => figure1Data(model, dataset, smallBatch(2), { samples: 3 }),
    /samples must be an integer in \[1, 2\]/,
  );
  assert.throws(
    () => figure1Data(model, dataset, smallBatch(2), { ratio: 1.5 }),
    /ratio must lie in \[0, 1\]/,
  );

  const figure = figure1(data);
  // Per row and modality: input + CAM, then input + mask twice.
  assert.equal(figure.data.length, 2 * 2 * 6);
  assert.equal(figure.layout.height, 100 + 60 + 2 * 210);
  model.dispose();
});

Deno.test("maskedCamShare() sums CAM under zeros", () => {
  const share = maskedCamShare({
    input: [[0]],
    cam: [[1, 3], [0, 4]],
    camDropMask: [[1, 1], [1, 0]],
    randomMask: [[0, 1], [0, 1]],
  });
  assert.equal(share.camDrop, 0.5);
  assert.equal(share.random, 0.125);
});
