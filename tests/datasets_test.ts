/**
 * End-to-end tests of the on-disk datasets: tiny datasets in every layout
 * are built from ffmpeg's test sources at test time, and `deno task repro`
 * trains on each for one short epoch.
 *
 * `deno task prepare` converts generated videos, and `deno task
 * cache:clear` empties a cache.
 *
 * Without ffmpeg these tests are skipped with the reason printed; with
 * CI=true they run and fail instead, because CI installs ffmpeg.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildFixture,
  ffmpeg,
  findFfmpegProblem,
  fixtureClips,
} from "../lib/data/_disk_testing.ts";
import { decodeWav } from "../lib/data/_audio.ts";
import { type DiskDatasetKind, loadDiskDataset } from "../lib/data/disk.ts";
import { parseMetricsCsv } from "../lib/metrics/frame.ts";
import { task } from "./_task.ts";

const ffmpegProblem = await findFfmpegProblem();
const requireFfmpeg = Deno.env.get("CI") === "true";
const skip = ffmpegProblem !== undefined && !requireFfmpeg;
if (skip) console.warn(`skip: on-disk dataset tests: ${ffmpegProblem}`);

/** Registers a test that needs ffmpeg. */
function ffmpegTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: skip,
    fn: async () => {
      if (ffmpegProblem !== undefined) {
        throw new Error(`ffmpeg is required with CI=true: ${ffmpegProblem}`);
      }
      await fn();
    },
  });
}

// Per layout: the labels and split sizes of its fixture. Train sizes leave
// two batches of 4 after a carved validation split.
const LAYOUTS: Record<
  DiskDatasetKind,
  { labels: (string | number)[]; counts: Record<string, number> }
> = {
  cremad: {
    labels: ["NEU", "HAP", "ANG"],
    counts: { train: 10, test: 3 },
  },
  ave: {
    labels: ["Church bell", "Dog"],
    counts: { train: 8, val: 2, test: 2 },
  },
  ks: { labels: [0, 1, 2], counts: { train: 10, test: 3 } },
  manifest: { labels: ["cat", "dog"], counts: { train: 8, val: 2, test: 2 } },
};

for (const kind of Object.keys(LAYOUTS) as DiskDatasetKind[]) {
  ffmpegTest(`repro trains on a tiny ${kind} dataset`, async () => {
    const dir = await Deno.makeTempDir({ prefix: `camdrop-${kind}-` });
    const { labels, counts } = LAYOUTS[kind];
    const dataRoot = await buildFixture(
      kind,
      join(dir, "data"),
      fixtureClips(labels, counts),
      { seconds: 1, frames: 4, width: 64, height: 48 },
    );
    const out = join(dir, "runs");
    const result = await task(
      "repro",
      "--dataset",
      kind,
      "--data-root",
      dataRoot,
      "--preset",
      "smoke",
      "--epochs",
      "1",
      "--method",
      "naive",
      "--batch-size",
      "4",
      "--jobs",
      "1",
      "--out",
      out,
      "--figures",
      join(dir, "figures"),
      "--cache-dir",
      join(dir, "cache"),
    );
    assert.equal(result.code, 0, result.stderr);

    const run = join(out, `${kind}-concat-naive-s0`);
    const rows = parseMetricsCsv(
      await Deno.readTextFile(join(run, "metrics.csv")),
    );
    assert.equal(rows.length, 1, "one epoch");
    assert.ok(Number.isFinite(rows[0].train_loss as number), "finite loss");
    const record = JSON.parse(
      await Deno.readTextFile(join(run, "config.json")),
    );
    assert.equal(record.config.data.dataset, kind);
    assert.match(record.data.hash, /^[0-9a-f]{64}$/);
    const frames = kind === "cremad" ? 1 : 3;
    assert.deepEqual(record.data.visualShape, [frames, 32, 32, 3]);
    const seconds = kind === "cremad" ? 3 : 10;
    assert.deepEqual(record.data.audioShape, [257, seconds === 3 ? 299 : 1004]);
    const cached = [...Deno.readDirSync(join(dir, "cache"))];
    assert.ok(cached.length > 1, "the cache folder holds entries");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("repro needs --data-root for disk datasets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-noroot-" });
  const cases: [string[], RegExp][] = [
    [
      ["--dataset", "cremad"],
      /Missing data root: dataset "cremad" is read from disk; pass --data-root DIR/,
    ],
    [
      ["--dataset", "ave", "--data-root", join(dir, "absent")],
      /data root .*absent not found; pass the folder of the ave dataset/,
    ],
    [["--dataset", "vggsound"], /Invalid dataset "vggsound": expected one of/],
  ];
  for (const [args, pattern] of cases) {
    const result = await task(
      "repro",
      "--preset",
      "smoke",
      "--method",
      "naive",
      "--out",
      dir,
      "--figures",
      join(dir, "figures"),
      ...args,
    );
    assert.equal(result.code, 1, `${args.join(" ")} should fail`);
    assert.match(result.stderr, pattern);
  }
  await Deno.remove(dir, { recursive: true });
});

/** Writes a test video with a tone, in the container its extension names. */
async function writeVideo(
  path: string,
  seconds: number,
  audio = true,
): Promise<void> {
  const inputs = [
    "-f",
    "lavfi",
    "-i",
    `testsrc=size=64x48:rate=10:duration=${seconds}`,
  ];
  if (audio) {
    inputs.push(
      "-f",
      "lavfi",
      "-i",
      `sine=frequency=500:sample_rate=44100:duration=${seconds}`,
    );
  }
  // FLV, the container of CREMA-D's videos, takes Sorenson H.263 only.
  const codec = path.endsWith(".flv") ? "flv" : "mpeg4";
  await ffmpeg(...inputs, "-c:v", codec, "-shortest", path);
}

ffmpegTest("prepare converts videos and reports failures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-prepare-" });
  const videos = join(dir, "videos");
  await Deno.mkdir(videos);
  await writeVideo(join(videos, "v1.mp4"), 3);
  await writeVideo(join(videos, "v2.mkv"), 2);
  await writeVideo(join(videos, "v3.avi"), 2);
  await writeVideo(join(videos, "v4.mp4"), 2);
  await writeVideo(join(videos, "mute.mp4"), 2, false);
  // Random bytes named like a video: ffprobe cannot read them.
  const noise = new Uint8Array(4000);
  crypto.getRandomValues(noise);
  await Deno.writeFile(join(videos, "corrupt.mp4"), noise);
  const labels = join(dir, "labels.csv");
  await Deno.writeTextFile(
    labels,
    "video,label,split\nv1.mp4,dog,train\nv2,cat,train\nv3.avi,dog,test\n" +
      "v4.mp4,cat,val\nmute.mp4,dog,train\ncorrupt.mp4,cat,train\n",
  );
  const out = join(dir, "out");
  const args = ["--videos", videos, "--labels", labels, "--out", out];

  const first = await task("prepare", ...args);
  assert.equal(first.code, 2, "exit status 2: some videos failed");
  assert.match(first.stdout, /^4 prepared, 0 already prepared, 2 failed$/m);
  assert.match(first.stdout, /failed: .*corrupt\.mp4: ffprobe failed/);
  assert.match(first.stdout, /failed: .*mute\.mp4: no audio stream/);
  assert.match(first.stderr, /6\/6 \w+: (prepared|failed)/, "progress lines");

  const manifest = await Deno.readTextFile(join(out, "manifest.csv"));
  assert.equal(
    manifest,
    "split,label,audio,frames\ntrain,dog,audio/v1.wav,frames/v1\n" +
      "train,cat,audio/v2.wav,frames/v2\ntest,dog,audio/v3.wav,frames/v3\n" +
      "val,cat,audio/v4.wav,frames/v4\n",
  );
  const frames = [...Deno.readDirSync(join(out, "frames", "v1"))]
    .map((item) => item.name).sort();
  assert.deepEqual(frames, ["00001.jpg", "00002.jpg", "00003.jpg"], "1 fps");
  const wav = decodeWav(
    await Deno.readFile(join(out, "audio", "v1.wav")),
    "v1.wav",
  );
  assert.equal(wav.sampleRate, 16000);
  assert.ok(Math.abs(wav.samples.length - 48000) < 1600, "about 3 s");

  const second = await task("prepare", ...args);
  assert.equal(second.code, 2);
  assert.match(second.stdout, /^0 prepared, 4 already prepared, 2 failed$/m);

  const dataset = await loadDiskDataset("manifest", out, {
    audioSeconds: 1,
    imageSize: 16,
    cacheDir: null,
  });
  assert.deepEqual({ ...dataset.splitSizes }, { train: 2, val: 1, test: 1 });
  assert.deepEqual([...dataset.classNames], ["cat", "dog"]);
  await Deno.remove(dir, { recursive: true });
});

ffmpegTest("prepare writes the CREMA-D layout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-prepare-" });
  const videos = join(dir, "videos");
  await Deno.mkdir(videos);
  const rows = [
    "1001_DFA_ANG_XX,ANG",
    "1002_DFA_HAP_XX,HAP",
    "1003_IEO_SAD_LO,SAD",
  ];
  for (const row of rows) {
    await writeVideo(join(videos, `${row.split(",")[0]}.flv`), 1);
  }
  const labels = join(dir, "labels.csv");
  await Deno.writeTextFile(labels, rows.join("\n") + "\n");
  const out = join(dir, "out");
  const result = await task(
    "prepare",
    "--videos",
    videos,
    "--labels",
    labels,
    "--out",
    out,
    "--layout",
    "cremad",
    "--test-fraction",
    "0.34",
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^3 prepared, 0 already prepared, 0 failed$/m);
  const train = await Deno.readTextFile(join(out, "train.csv"));
  const test = await Deno.readTextFile(join(out, "test.csv"));
  assert.equal(train.trim().split("\n").length, 2);
  assert.equal(test.trim().split("\n").length, 1);
  const dataset = await loadDiskDataset("cremad", out, {
    imageSize: 16,
    cacheDir: null,
  });
  assert.equal(dataset.splitSizes.test, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prepare names a bad label list", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-prepare-" });
  const labels = join(dir, "labels.csv");
  await Deno.writeTextFile(labels, "a.mp4,dog\nb.mp4\n");
  const result = await task(
    "prepare",
    "--videos",
    dir,
    "--labels",
    labels,
    "--out",
    join(dir, "out"),
  );
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /error: .*labels\.csv line 2: expected "video,label"/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cache:clear empties a cache folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-clear-" });
  const cacheDir = join(dir, "cache");
  const { PreprocessCache } = await import("../lib/data/_cache.ts");
  const cache = new PreprocessCache(cacheDir);
  const codec = {
    decode: (bytes: Uint8Array) => bytes,
    encode: (bytes: Uint8Array) => bytes,
  };
  cache.getOrCompute("ab".repeat(32), codec, () => new Uint8Array(2000));

  const cleared = await task("cache:clear", "--cache-dir", cacheDir);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stdout, /removed 1 cache entries \(0\.0 MB\) from /);
  assert.throws(() => Deno.statSync(cacheDir), Deno.errors.NotFound);

  const empty = await task("cache:clear", "--cache-dir", cacheDir);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /nothing to clear in /);

  const refused = await task("cache:clear", "--cache-dir", dir);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /is not a preprocessing cache/);
  await Deno.remove(dir, { recursive: true });
});
