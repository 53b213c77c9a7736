/**
 * End-to-end tests of the on-disk datasets: tiny datasets in every layout
 * are built from ffmpeg's test sources at test time, and `deno task repro`
 * trains on each for one short epoch.
 *
 * Without ffmpeg these tests are skipped with the reason printed; with
 * CI=true they run and fail instead, because CI installs ffmpeg.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildFixture,
  findFfmpegProblem,
  fixtureClips,
} from "../lib/data/_disk_testing.ts";
import type { DiskDatasetKind } from "../lib/data/disk.ts";
import { parseMetricsCsv } from "../lib/metrics/frame.ts";

const root = new URL("..", import.meta.url).pathname;

async function task(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

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
