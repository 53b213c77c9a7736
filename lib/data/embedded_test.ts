import assert from "node:assert/strict";
import type { EmbeddedIndex } from "./_embedded_store.ts";
import {
  EMBEDDED_DEFAULTS,
  type EmbeddedDigitsOptions,
  loadEmbeddedDigits,
  MNIST_MEAN,
  MNIST_STD,
} from "./embedded.ts";
import { logSpectrogram } from "./spectrogram.ts";
import type { AudioVisualDataset, BatchOptions, SampleBatch } from "./types.ts";

const dataDir = new URL("../../data/embedded/", import.meta.url);
const index: EmbeddedIndex = JSON.parse(
  Deno.readTextFileSync(new URL("index.json", dataDir)),
);
const SPLITS = ["train", "val", "test"] as const;

// Small subsets keep the tests fast; every loader test uses them.
const SMALL: EmbeddedDigitsOptions = {
  trainSize: 40,
  valSize: 24,
  testSize: 24,
};
// Every degradation off: the batches must reproduce the stored data.
const CLEAN: EmbeddedDigitsOptions = {
  ...SMALL,
  audioSnrDb: null,
  visualNoiseStd: 0,
  visualOcclusion: 0,
  maxShift: 0,
};

function load(options: EmbeddedDigitsOptions = {}) {
  return loadEmbeddedDigits({ ...SMALL, ...options });
}

function collect(
  dataset: AudioVisualDataset,
  split: "train" | "val" | "test",
  options: Partial<BatchOptions> = {},
): SampleBatch[] {
  return [
    ...dataset.batches(split, { batchSize: 16, seed: 1, epoch: 0, ...options }),
  ];
}

function concat(batches: SampleBatch[], key: "audio" | "visual"): Float32Array {
  const total = batches.reduce((sum, batch) => sum + batch[key].length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const batch of batches) {
    out.set(batch[key], at);
    at += batch[key].length;
  }
  return out;
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function flatIndices(batches: SampleBatch[]): number[] {
  return batches.flatMap((batch) => [...batch.indices]);
}

Deno.test("index.json split sizes", () => {
  assert.ok(index.splits.train.image.length >= 2000, "train");
  assert.ok(index.splits.val.image.length >= 500, "val");
  assert.ok(index.splits.test.image.length >= 500, "test");
});

Deno.test("index.json speakers disjoint across splits", () => {
  const speakersBySplit = SPLITS.map((split) =>
    new Set(index.splits[split].clip.map((clip) => index.clips.speaker[clip]))
  );
  for (let a = 0; a < 3; a++) {
    for (const speaker of speakersBySplit[a]) {
      assert.equal(index.speakers[speaker].split, SPLITS[a], `${speaker}`);
      for (let b = a + 1; b < 3; b++) {
        assert.ok(
          !speakersBySplit[b].has(speaker),
          `speaker ${speaker} in ${SPLITS[a]} and ${SPLITS[b]}`,
        );
      }
    }
  }
  // Each speaker is one espeak-ng variant, so no variant is shared either.
  const variants = index.speakers.map((speaker) => speaker.variant);
  assert.equal(new Set(variants).size, variants.length);
});

Deno.test("index.json images disjoint across splits", () => {
  const sources = SPLITS.map((split) =>
    new Set(
      index.splits[split].image.map((image) =>
        `${index.images.label[image]}/${index.images.sourceIndex[image]}`
      ),
    )
  );
  for (let a = 0; a < 3; a++) {
    assert.equal(
      sources[a].size,
      index.splits[SPLITS[a]].image.length,
      `${SPLITS[a]} repeats an image`,
    );
    for (let b = a + 1; b < 3; b++) {
      const shared = [...sources[a]].filter((key) => sources[b].has(key));
      assert.deepEqual(shared, [], `${SPLITS[a]} and ${SPLITS[b]} share`);
    }
  }
});

Deno.test("index.json pairs share one digit", () => {
  for (const split of SPLITS) {
    const { image, clip } = index.splits[split];
    for (let i = 0; i < image.length; i++) {
      assert.equal(
        index.images.label[image[i]],
        index.clips.label[clip[i]],
        `${split} sample ${i}`,
      );
    }
  }
});

Deno.test("loadEmbeddedDigits() shapes and sizes", async () => {
  const dataset = await load();
  assert.equal(dataset.name, "embedded-digits");
  assert.equal(dataset.classNames.length, 10);
  assert.deepEqual(dataset.audioShape, [257, 98]);
  assert.deepEqual(dataset.visualShape, [1, 32, 32, 1]);
  assert.deepEqual(dataset.splitSizes, { train: 40, val: 24, test: 24 });
  assert.match(dataset.contentHash, /^[0-9a-f]{64}$/);

  const full = await loadEmbeddedDigits();
  assert.deepEqual(full.splitSizes, {
    train: index.splits.train.image.length,
    val: index.splits.val.image.length,
    test: index.splits.test.image.length,
  });
});

Deno.test("batches() sizes, shapes and labels", async () => {
  const dataset = await load({ frames: 3, imageSize: 48, channels: 3 });
  assert.deepEqual(dataset.visualShape, [3, 48, 48, 3]);
  const batches = collect(dataset, "train", { training: true });
  assert.deepEqual(batches.map((batch) => batch.size), [16, 16, 8]);
  for (const batch of batches) {
    assert.equal(batch.audio.length, batch.size * 257 * 98);
    assert.equal(batch.visual.length, batch.size * 3 * 48 * 48 * 3);
    assert.equal(batch.labels.length, batch.size);
    assert.equal(batch.indices.length, batch.size);
    for (const label of batch.labels) assert.ok(label >= 0 && label < 10);
    assert.ok(batch.audio.every(Number.isFinite), "audio finite");
    assert.ok(batch.visual.every(Number.isFinite), "visual finite");
  }
  const seen = flatIndices(batches).sort((a, b) => a - b);
  assert.deepEqual(seen, [...Array(40).keys()]);

  const dropped = collect(dataset, "train", { training: true, dropLast: true });
  assert.deepEqual(dropped.map((batch) => batch.size), [16, 16]);
  const evaluation = collect(dataset, "val", { dropLast: true });
  assert.deepEqual(evaluation.map((batch) => batch.size), [16, 8]);
  assert.deepEqual(flatIndices(evaluation), [...Array(24).keys()]);
});

Deno.test("batches() labels match index.json", async () => {
  const dataset = await load();
  const [batch] = collect(dataset, "test");
  for (let b = 0; b < batch.size; b++) {
    const clip = index.splits.test.clip[batch.indices[b]];
    assert.equal(batch.labels[b], index.clips.label[clip]);
  }
});

Deno.test("batches() without degradation reproduce the data", async () => {
  const dataset = await load(CLEAN);
  const [batch] = collect(dataset, "val", { batchSize: 2 });
  const images = await Deno.readFile(new URL("images.bin", dataDir));
  const pcm = new DataView(
    (await Deno.readFile(new URL("clips.bin", dataDir))).buffer,
  );
  for (let b = 0; b < batch.size; b++) {
    // The 28-pixel digit sits at offset 2 in the 32-pixel frame.
    const image = index.splits.val.image[b];
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const stored = images[image * 784 + y * 28 + x] / 255;
        const actual = batch.visual[b * 1024 + (y + 2) * 32 + (x + 2)];
        const expected = (stored - MNIST_MEAN) / MNIST_STD;
        assert.ok(Math.abs(actual - expected) < 1e-6, `pixel ${x},${y}`);
      }
    }

    // The clip is centred in 1 s of silence.
    const clip = index.splits.val.clip[b];
    const length = index.clips.length[clip];
    const window = new Float32Array(16000);
    const start = Math.floor((16000 - length) / 2);
    for (let i = 0; i < length; i++) {
      window[start + i] =
        pcm.getInt16(2 * (index.clips.offset[clip] + i), true) /
        32768;
    }
    const expected = logSpectrogram(window).data;
    const actual = batch.audio.subarray(
      b * expected.length,
      (b + 1) * expected.length,
    );
    assert.ok(sameArray(actual, expected), `audio of sample ${b}`);
  }
});

Deno.test("batches() same seed gives same batches", async () => {
  const first = await load({ frames: 2 });
  const second = await load({ frames: 2 });
  for (const training of [true, false]) {
    const a = collect(first, "train", { training });
    const b = collect(second, "train", { training });
    assert.deepEqual(flatIndices(a), flatIndices(b));
    assert.ok(sameArray(concat(a, "audio"), concat(b, "audio")), "audio");
    assert.ok(sameArray(concat(a, "visual"), concat(b, "visual")), "visual");
  }
});

Deno.test("batches() training changes with epoch", async () => {
  const dataset = await load();
  const epoch0 = collect(dataset, "train", { training: true, epoch: 0 });
  const epoch1 = collect(dataset, "train", { training: true, epoch: 1 });
  assert.notDeepEqual(flatIndices(epoch0), flatIndices(epoch1));

  // Compare the same sample in both epochs: its noise must differ.
  const position0 = flatIndices(epoch0).indexOf(0);
  const position1 = flatIndices(epoch1).indexOf(0);
  const size = 257 * 98;
  const audio0 = concat(epoch0, "audio").subarray(
    position0 * size,
    (position0 + 1) * size,
  );
  const audio1 = concat(epoch1, "audio").subarray(
    position1 * size,
    (position1 + 1) * size,
  );
  assert.ok(!sameArray(audio0, audio1), "audio noise");
  const pixels = 32 * 32;
  const visual0 = concat(epoch0, "visual").subarray(
    position0 * pixels,
    (position0 + 1) * pixels,
  );
  const visual1 = concat(epoch1, "visual").subarray(
    position1 * pixels,
    (position1 + 1) * pixels,
  );
  assert.ok(!sameArray(visual0, visual1), "visual noise");
});

Deno.test("batches() training sample independent of batch size", async () => {
  const dataset = await load();
  const small = collect(dataset, "train", { training: true, batchSize: 4 });
  const large = collect(dataset, "train", { training: true, batchSize: 32 });
  assert.deepEqual(flatIndices(small), flatIndices(large));
  assert.ok(sameArray(concat(small, "audio"), concat(large, "audio")));
  assert.ok(sameArray(concat(small, "visual"), concat(large, "visual")));
});

Deno.test("batches() evaluation fixed across epochs and seeds", async () => {
  const dataset = await load();
  const reference = collect(dataset, "val", { epoch: 0, seed: 1 });
  for (const options of [{ epoch: 3, seed: 1 }, { epoch: 0, seed: 99 }]) {
    const other = collect(dataset, "val", { ...options, batchSize: 5 });
    assert.deepEqual(flatIndices(other), flatIndices(reference));
    assert.ok(sameArray(concat(other, "audio"), concat(reference, "audio")));
    assert.ok(sameArray(concat(other, "visual"), concat(reference, "visual")));
  }
});

Deno.test("loadEmbeddedDigits() each option changes the data", async () => {
  const base = await load();
  const baseHash = base.contentHash;
  const evalBatches = (dataset: AudioVisualDataset) => collect(dataset, "val");
  const trainBatches = (dataset: AudioVisualDataset) =>
    collect(dataset, "train", { training: true });
  const reference = evalBatches(base);
  const referenceTrain = trainBatches(base);

  const cases: [EmbeddedDigitsOptions, "audio" | "visual", boolean][] = [
    [{ audioSnrDb: -5 }, "audio", false],
    [{ audioSnrDb: null }, "audio", false],
    [{ audioNoise: "babble" }, "audio", false],
    [{ visualNoiseStd: 0.1 }, "visual", false],
    [{ visualOcclusion: 0.1 }, "visual", false],
    [{ visualBlur: 1 }, "visual", false],
    [{ visualContrast: 0.5 }, "visual", false],
    [{ evaluationSeed: 5 }, "visual", false],
    [{ evaluationSeed: 5 }, "audio", false],
    [{ maxShift: 0 }, "visual", true],
  ];
  for (const [options, key, training] of cases) {
    const dataset = await load(options);
    const name = `${JSON.stringify(options)} ${key}`;
    const actual = training ? trainBatches(dataset) : evalBatches(dataset);
    const expected = training ? referenceTrain : reference;
    assert.ok(!sameArray(concat(actual, key), concat(expected, key)), name);
    assert.notEqual(dataset.contentHash, baseHash, `${name} hash`);
    for (const [option, value] of Object.entries(options)) {
      assert.equal(dataset.describe()[option], value, `${name} describe`);
    }
  }
});

Deno.test("loadEmbeddedDigits() lower SNR adds more noise", async () => {
  // Noise raises the log magnitude of the near-silent padding, more so at
  // lower SNR, so the mean log spectrogram grows as SNR falls.
  const means = [];
  for (const audioSnrDb of [null, 20, 0]) {
    const audio = concat(collect(await load({ audioSnrDb }), "val"), "audio");
    means.push(audio.reduce((sum, value) => sum + value, 0) / audio.length);
  }
  assert.ok(means[0] < means[1], `clean ${means[0]} vs 20 dB ${means[1]}`);
  assert.ok(means[1] < means[2], `20 dB ${means[1]} vs 0 dB ${means[2]}`);
});

Deno.test("loadEmbeddedDigits() frames and channels", async () => {
  const dataset = await load({ frames: 3, channels: 3 });
  const [batch] = collect(dataset, "val", { batchSize: 1 });
  const frame = 32 * 32 * 3;
  const views = [0, 1, 2].map((t) =>
    batch.visual.subarray(t * frame, (t + 1) * frame)
  );
  assert.ok(!sameArray(views[0], views[1]), "views 0 and 1 differ");
  assert.ok(!sameArray(views[1], views[2]), "views 1 and 2 differ");
  for (let p = 0; p < 32 * 32; p++) {
    assert.equal(views[0][3 * p], views[0][3 * p + 1]);
    assert.equal(views[0][3 * p], views[0][3 * p + 2]);
  }
});

Deno.test("describe() lists resolved settings", async () => {
  const dataset = await load();
  const described = dataset.describe();
  for (const [key, value] of Object.entries(EMBEDDED_DEFAULTS)) {
    assert.equal(described[key], value, key);
  }
  assert.deepEqual(described.splitSizes, { train: 40, val: 24, test: 24 });
  assert.deepEqual(described.audioShape, [257, 98]);
  assert.equal(described.contentHash, dataset.contentHash);
  assert.deepEqual(JSON.parse(JSON.stringify(described)), described);
});

Deno.test("loadEmbeddedDigits() rejects invalid options", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ frames: 4 }, /option frames must be an integer in \[1, 3\], got 4/],
    [
      { imageSize: 20 },
      /option imageSize must be an integer in \[28, 224\], got 20/,
    ],
    [{ channels: 2 }, /option channels must be 1 or 3, got 2/],
    [
      { audioNoise: "pink" },
      /option audioNoise must be "white" or "babble", got "pink"/,
    ],
    [
      { audioSnrDb: 100 },
      /option audioSnrDb must be a number in \[-30, 60\], got 100/,
    ],
    [
      { visualNoiseStd: -1 },
      /option visualNoiseStd must be a number in \[0, 2\]/,
    ],
    [
      { visualOcclusion: 1 },
      /option visualOcclusion must be a number in \[0, 0.9\]/,
    ],
    [
      { visualBlur: Number.NaN },
      /option visualBlur must be a number in \[0, 5\], got NaN/,
    ],
    [
      { visualContrast: 0 },
      /option visualContrast must be a number in \[0.05, 1\]/,
    ],
    [
      { maxShift: 1.5 },
      /option maxShift must be an integer in \[0, 8\], got 1.5/,
    ],
    [
      { trainSize: 0 },
      /option trainSize must be an integer in \[1, 3000\], got 0/,
    ],
    [
      { testSize: 501 },
      /option testSize must be an integer in \[1, 500\], got 501/,
    ],
    [{ frame: 2 }, /unknown option frame; expected one of/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(
      () => loadEmbeddedDigits(options as EmbeddedDigitsOptions),
      message,
    );
  }
});

Deno.test("batches() rejects invalid batch options", async () => {
  const dataset = await load();
  const cases: [Partial<BatchOptions>, RegExp][] = [
    [{ batchSize: 0 }, /batchSize must be a positive integer, got 0/],
    [{ epoch: -1 }, /epoch must be a non-negative integer, got -1/],
    [{ seed: 0.5 }, /seed must be an integer, got 0.5/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => collect(dataset, "train", options), message);
  }
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => collect(dataset, "dev" as any),
    /split must be train, val or test, got dev/,
  );
});

Deno.test("loadEmbeddedDigits() missing or corrupt files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadEmbeddedDigits({ dataDir: dir }),
      /index\.json not found; regenerate the data with: npx deno run .*data\/generate\.ts/,
    );
    await Deno.copyFile(new URL("index.json", dataDir), `${dir}/index.json`);
    await Deno.copyFile(new URL("clips.bin", dataDir), `${dir}/clips.bin`);
    await assert.rejects(
      () => loadEmbeddedDigits({ dataDir: dir }),
      /images\.bin not found/,
    );

    // Same size, one byte changed.
    const images = await Deno.readFile(new URL("images.bin", dataDir));
    images[100] ^= 1;
    await Deno.writeFile(`${dir}/images.bin`, images);
    await assert.rejects(
      () => loadEmbeddedDigits({ dataDir: dir }),
      /images\.bin is invalid \(SHA-256 differs from index\.json\); regenerate/,
    );

    await Deno.writeTextFile(`${dir}/index.json`, "{ not json");
    await assert.rejects(
      () => loadEmbeddedDigits({ dataDir: dir }),
      /index\.json is invalid \(.*\); regenerate the data with/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
