import assert from "node:assert/strict";
import { join } from "node:path";
import { buildFixture, fixtureClips, writeWav } from "./_disk_testing.ts";
import {
  DISK_DATASET_KINDS,
  type DiskDatasetOptions,
  loadDiskDataset,
} from "./disk.ts";
import { logSpectrogram } from "./spectrogram.ts";
import type { SampleBatch, Split } from "./types.ts";

// Small settings so that every test decodes little: 0.5 s clips give
// 257 x 48 spectrograms, and 16-pixel frames.
const SMALL: DiskDatasetOptions = {
  audioSeconds: 0.5,
  imageSize: 16,
  cacheDir: null,
};
const EMOTIONS = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"];

async function tempDir(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ prefix: `camdrop-${prefix}-` });
}

/** A CREMA-D fixture of 10 train and 3 test clips from the JS encoders. */
async function cremad(dir: string, frames = 2): Promise<string> {
  return await buildFixture(
    "cremad",
    dir,
    fixtureClips(EMOTIONS, { train: 10, test: 3 }),
    { source: "js", seconds: 0.3, frames },
  );
}

function collect(
  dataset: { batches(split: Split, options: never): Iterable<SampleBatch> },
  split: Split,
  options: Record<string, unknown>,
): SampleBatch[] {
  return [...dataset.batches(split, { batchSize: 4, ...options } as never)];
}

Deno.test("loadDiskDataset() reads CREMA-D", async () => {
  const dir = await tempDir("cremad");
  await cremad(dir);
  const dataset = await loadDiskDataset("cremad", dir, SMALL);
  assert.equal(dataset.name, "cremad");
  assert.deepEqual([...dataset.classNames], EMOTIONS);
  assert.deepEqual([...dataset.audioShape], [257, 48]);
  assert.deepEqual([...dataset.visualShape], [1, 16, 16, 3]);
  assert.deepEqual({ ...dataset.splitSizes }, { train: 9, val: 1, test: 3 });
  assert.match(dataset.contentHash, /^[0-9a-f]{64}$/);
  const description = dataset.describe();
  assert.match(
    String(description.validation),
    /carved from the training list: 10%/,
  );
  assert.deepEqual(description.skippedMissing, { train: 0, val: 0, test: 0 });

  const [batch] = collect(dataset, "test", { seed: 0, epoch: 0 });
  assert.equal(batch.size, 3);
  assert.equal(batch.audio.length, 3 * 257 * 48);
  assert.equal(batch.visual.length, 3 * 16 * 16 * 3);
  assert.deepEqual([...batch.labels], [0, 1, 2]);
  assert.ok(batch.audio.every(Number.isFinite));
  assert.ok(batch.visual.every(Number.isFinite));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() reads every layout", async () => {
  const labels: Record<string, readonly (string | number)[]> = {
    cremad: EMOTIONS,
    ave: ["Banjo", "Bus", "Dog"],
    ks: ["bowling", "playing drums"],
    manifest: ["cat", "dog"],
  };
  const frames = { cremad: 1, ave: 3, ks: 3, manifest: 3 };
  for (const kind of DISK_DATASET_KINDS) {
    const dir = await tempDir(kind);
    const counts = kind === "ave" || kind === "manifest"
      ? { train: 4, val: 2, test: 2 }
      : { train: 4, test: 2 };
    const root = await buildFixture(
      kind,
      dir,
      fixtureClips(labels[kind], counts),
      { source: "js", seconds: 0.3, frames: 4 },
    );
    const dataset = await loadDiskDataset(kind, root, SMALL);
    assert.deepEqual(
      [...dataset.visualShape],
      [frames[kind], 16, 16, 3],
      `${kind}: frames`,
    );
    assert.equal(dataset.splitSizes.test, 2, `${kind}: test size`);
    assert.equal(
      dataset.describe().validation,
      kind === "ave" || kind === "manifest"
        ? "from the validation split file"
        : "carved from the training list: 10% of it, stratified by class, " +
          "seeded by splitSeed 0",
      `${kind}: validation`,
    );
    const [batch] = collect(dataset, "train", {
      seed: 1,
      epoch: 0,
      training: true,
    });
    assert.equal(batch.visual.length, batch.size * frames[kind] * 16 * 16 * 3);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadDiskDataset() fixes evaluation batches", async () => {
  const dir = await tempDir("eval");
  await cremad(dir, 5);
  const dataset = await loadDiskDataset("cremad", dir, { ...SMALL, frames: 3 });
  const first = collect(dataset, "test", { seed: 0, epoch: 0 });
  const later = collect(dataset, "test", { seed: 9, epoch: 4 });
  assert.deepEqual(first[0].visual, later[0].visual);
  assert.deepEqual(first[0].audio, later[0].audio);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() varies training frames by epoch", async () => {
  const dir = await tempDir("train");
  await cremad(dir, 5);
  const dataset = await loadDiskDataset("cremad", dir, { ...SMALL, frames: 3 });
  const options = { seed: 3, epoch: 0, training: true };
  const a = collect(dataset, "train", options);
  const b = collect(dataset, "train", options);
  assert.deepEqual(a[0].indices, b[0].indices, "same seed, same order");
  assert.deepEqual(a[0].visual, b[0].visual, "same seed, same frames");

  const next = collect(dataset, "train", { ...options, epoch: 1 });
  const sample = a[0].indices[0];
  const position = (batches: SampleBatch[]) => {
    for (const batch of batches) {
      const i = batch.indices.indexOf(sample);
      if (i >= 0) return { batch, i };
    }
    throw new Error(`sample ${sample} not found`);
  };
  const size = 3 * 16 * 16 * 3;
  const before = position(a);
  const after = position(next);
  assert.notDeepEqual(
    before.batch.visual.subarray(before.i * size, (before.i + 1) * size),
    after.batch.visual.subarray(after.i * size, (after.i + 1) * size),
    "epoch 1 draws other frames, crops and flips",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() lists missing media", async () => {
  const dir = await tempDir("missing");
  await cremad(dir);
  for (const id of ["train-000", "train-001", "train-002"]) {
    await Deno.remove(join(dir, "AudioWAV", `${id}.wav`));
  }
  await Deno.remove(join(dir, "Image-01-FPS", "test-000"), { recursive: true });
  await assert.rejects(
    () => loadDiskDataset("cremad", dir, SMALL),
    (error: Error) => {
      assert.match(error.message, /4 samples have missing media/);
      assert.match(
        error.message,
        /AudioWAV\/train-00[0-2]\.wav \(audio file not found; train\.csv line \d+\)/,
      );
      assert.match(
        error.message,
        /Image-01-FPS\/test-000 \(frames not found; test\.csv line 1\)/,
      );
      assert.match(error.message, /set skipMissing/);
      return true;
    },
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() skips missing media on request", async () => {
  const dir = await tempDir("skip");
  await cremad(dir);
  await Deno.remove(join(dir, "AudioWAV", "test-001.wav"));
  await Deno.mkdir(join(dir, "Image-01-FPS", "empty"));
  await Deno.writeTextFile(join(dir, "test.csv"), "empty,NEU\n", {
    append: true,
  });
  const dataset = await loadDiskDataset("cremad", dir, {
    ...SMALL,
    skipMissing: true,
  });
  assert.equal(dataset.splitSizes.test, 2);
  assert.deepEqual(dataset.describe().skippedMissing, {
    train: 0,
    val: 0,
    test: 2,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() names a truncated WAV file", async () => {
  const dir = await tempDir("bad-wav");
  await cremad(dir);
  const path = join(dir, "AudioWAV", "test-002.wav");
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, 1000));
  const dataset = await loadDiskDataset("cremad", dir, SMALL);
  assert.throws(
    () => collect(dataset, "test", { seed: 0, epoch: 0 }),
    new RegExp(`Truncated WAV file ${path}`),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() names a truncated JPEG file", async () => {
  const dir = await tempDir("bad-jpeg");
  await cremad(dir, 1);
  const path = join(dir, "Image-01-FPS", "test-001", "00001.jpg");
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
  const dataset = await loadDiskDataset("cremad", dir, SMALL);
  assert.throws(
    () => collect(dataset, "test", { seed: 0, epoch: 0 }),
    new RegExp(`Cannot decode JPEG file ${path}`),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() resamples other rates", async () => {
  const dir = await tempDir("rates");
  await cremad(dir);
  const tone = (rate: number) =>
    Float32Array.from(
      { length: Math.round(rate * 0.5) },
      (_, i) => 0.5 * Math.sin((2 * Math.PI * 700 * i) / rate),
    );
  writeWav(join(dir, "AudioWAV", "test-000.wav"), tone(16000), 16000);
  writeWav(join(dir, "AudioWAV", "test-001.wav"), tone(44100), 44100);
  const dataset = await loadDiskDataset("cremad", dir, SMALL);
  const [batch] = collect(dataset, "test", { seed: 0, epoch: 0 });
  const size = 257 * 48;
  const native = batch.audio.subarray(0, size);
  const resampled = batch.audio.subarray(size, 2 * size);
  // Compare the bins that carry energy (the 700 Hz tone is bin 22); the
  // others sit near log(epsilon) and differ only in rounding noise.
  const bin = 22;
  for (let w = 0; w < 48; w++) {
    const a = native[bin * 48 + w];
    const b = resampled[bin * 48 + w];
    assert.ok(Math.abs(a - b) < 0.05, `frame ${w}: ${a} vs ${b}`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() tiles short clips", async () => {
  const dir = await tempDir("tile");
  await cremad(dir);
  const clip = Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i / 7));
  writeWav(join(dir, "AudioWAV", "test-000.wav"), clip, 16000);
  const dataset = await loadDiskDataset("cremad", dir, SMALL);
  const [batch] = collect(dataset, "test", { seed: 0, epoch: 0 });

  // The WAV stores 16-bit values, so build the expectation from them.
  const stored = clip.map((x) => Math.round(x * 32767) / 32768);
  const tiled = new Float32Array(8000);
  for (let i = 0; i < tiled.length; i++) tiled[i] = stored[i % 3000];
  const expected = logSpectrogram(tiled).data;
  const actual = batch.audio.subarray(0, expected.length);
  let maxError = 0;
  for (let i = 0; i < expected.length; i++) {
    maxError = Math.max(maxError, Math.abs(actual[i] - expected[i]));
  }
  assert.ok(maxError < 1e-4, `max error ${maxError}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() caches across epochs and runs", async () => {
  const dir = await tempDir("cache");
  const cacheDir = join(dir, "cache");
  await cremad(dir, 3);
  const options = { ...SMALL, frames: 1, cacheDir };
  const first = await loadDiskDataset("cremad", dir, options);
  const uncached = collect(first, "test", { seed: 0, epoch: 0 });
  // 3 spectrograms and the centre frame of 3 clips.
  assert.deepEqual(first.cacheStats(), { hits: 0, misses: 6 });

  const again = collect(first, "test", { seed: 0, epoch: 1 });
  assert.deepEqual(first.cacheStats(), { hits: 6, misses: 6 }, "second epoch");
  assert.deepEqual(again[0].audio, uncached[0].audio);
  assert.deepEqual(again[0].visual, uncached[0].visual);

  const second = await loadDiskDataset("cremad", dir, options);
  collect(second, "test", { seed: 0, epoch: 0 });
  assert.deepEqual(second.cacheStats(), { hits: 6, misses: 0 }, "second run");

  // A changed source file has a new key and is decoded again.
  const path = join(dir, "AudioWAV", "test-000.wav");
  await Deno.writeFile(path, await Deno.readFile(path), { append: true });
  const third = await loadDiskDataset("cremad", dir, options);
  collect(third, "test", { seed: 0, epoch: 0 });
  assert.deepEqual(third.cacheStats(), { hits: 5, misses: 1 }, "changed file");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() hashes settings and media", async () => {
  const dir = await tempDir("hash");
  await cremad(dir);
  const a = (await loadDiskDataset("cremad", dir, SMALL)).contentHash;
  const b = (await loadDiskDataset("cremad", dir, SMALL)).contentHash;
  assert.equal(a, b);
  const other = await loadDiskDataset("cremad", dir, {
    ...SMALL,
    imageSize: 20,
  });
  assert.notEqual(other.contentHash, a, "settings change the hash");
  const path = join(dir, "Image-01-FPS", "train-004", "00001.jpg");
  await Deno.writeFile(path, await Deno.readFile(path), { append: true });
  const changed = (await loadDiskDataset("cremad", dir, SMALL)).contentHash;
  assert.notEqual(changed, a, "a media size change changes the hash");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() caps split sizes", async () => {
  const dir = await tempDir("subset");
  await cremad(dir);
  const dataset = await loadDiskDataset("cremad", dir, {
    ...SMALL,
    trainSize: 4,
    testSize: 100,
  });
  assert.deepEqual({ ...dataset.splitSizes }, { train: 4, val: 1, test: 3 });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDiskDataset() rejects bad options", async () => {
  const dir = await tempDir("options");
  await assert.rejects(
    () => loadDiskDataset("cremad", join(dir, "nowhere"), SMALL),
    /data root .*nowhere not found; pass the folder of the cremad dataset/,
  );
  await assert.rejects(
    () => loadDiskDataset("vggsound" as never, dir, SMALL),
    /unknown dataset kind "vggsound"; expected one of cremad, ave, ks, manifest/,
  );
  await assert.rejects(
    () => loadDiskDataset("cremad", dir, { ...SMALL, imageSize: 4 }),
    /option imageSize must be an integer in \[8, 512\], got 4/,
  );
  await assert.rejects(
    () => loadDiskDataset("cremad", dir, { fps: 2 } as never),
    /unknown option fps/,
  );
  await Deno.remove(dir, { recursive: true });
});
