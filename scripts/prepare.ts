/**
 * `deno task prepare`: converts a folder of videos into an on-disk dataset
 * layout (1 fps JPEG frames, 16 kHz mono WAV) with ffmpeg. Run with
 * --help for the options.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  PREPARE_LAYOUTS,
  type PrepareLayout,
  type PrepareProgress,
  prepareVideos,
} from "../lib/mod.ts";
import { fail, parseNumber, usageError, writeErr } from "./_cli.ts";

const HELP =
  `Usage: deno task prepare --videos DIR --labels FILE --out DIR [options]

Extracts 1 fps JPEG frames and 16 kHz mono WAV audio from every video of
a label list with ffmpeg, and writes the split files the loaders read.
Videos already converted in --out are skipped, so an interrupted run can
be repeated. A video ffmpeg cannot read is reported and left out.

Options:
  --videos DIR         folder of the videos (any container ffmpeg reads).
  --labels FILE        CSV of "video,label" or "video,label,split" lines
                       (split: train, val or test); a header line starting
                       with "video" is skipped. video is a file name in
                       --videos, with or without its extension.
  --out DIR            output dataset folder.
  --layout NAME        manifest (default): audio/, frames/, manifest.csv.
                       cremad: AudioWAV/, Image-01-FPS/, train.csv and
                       test.csv; labels must be NEU, HAP, SAD, FEA, DIS
                       or ANG.
  --jobs N             videos converted at the same time (default 2).
  --test-fraction F    share of videos put in test when the list has no
                       split column, in [0, 0.5] (default 0.1).
  --seed N             seed of that split (default 0).
  --timeout S          seconds allowed per video (default 600).
  --help               show this text.

Exit status: 0 when every video was converted, 2 when some failed (the
others are written), 1 on an invalid option or label list.
`;

let values;
try {
  values = parseArgs({
    args: Deno.args,
    options: {
      videos: { type: "string" },
      labels: { type: "string" },
      out: { type: "string" },
      layout: { type: "string", default: "manifest" },
      jobs: { type: "string", default: "2" },
      "test-fraction": { type: "string", default: "0.1" },
      seed: { type: "string", default: "0" },
      timeout: { type: "string", default: "600" },
      help: { type: "boolean", default: false },
    },
    allowPositionals: false,
  }).values;
} catch (error) {
  fail(usageError(error));
}
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
for (const name of ["videos", "labels", "out"] as const) {
  if (values[name] === undefined) {
    fail(`missing --${name}. Run with --help for the options.`);
  }
}
if (!(PREPARE_LAYOUTS as readonly string[]).includes(values.layout)) {
  fail(
    `invalid --layout "${values.layout}": expected ${
      PREPARE_LAYOUTS.join(" or ")
    }.`,
  );
}

// Progress: a redrawn bar on a terminal, one line per video elsewhere.
const tty = Deno.stderr.isTerminal();
function showProgress(p: PrepareProgress): void {
  const counts = `${p.prepared} prepared, ${p.skipped} skipped, ` +
    `${p.failed} failed`;
  if (!tty) {
    writeErr(`${p.done}/${p.total} ${p.id}: ${p.outcome}\n`);
    return;
  }
  const width = 24;
  const filled = Math.round((p.done / p.total) * width);
  writeErr(
    `\r\x1b[2K[${"#".repeat(filled)}${".".repeat(width - filled)}] ` +
      `${p.done}/${p.total} (${counts})`,
  );
  if (p.done === p.total) writeErr("\n");
}

let summary;
try {
  summary = await prepareVideos({
    videoDir: values.videos!,
    labelsFile: values.labels!,
    outDir: values.out!,
    layout: values.layout as PrepareLayout,
    jobs: parseNumber("--jobs", values.jobs),
    testFraction: parseNumber("--test-fraction", values["test-fraction"]),
    seed: parseNumber("--seed", values.seed),
    timeoutSeconds: parseNumber("--timeout", values.timeout),
    onProgress: showProgress,
  });
} catch (error) {
  if (tty) writeErr("\n");
  fail((error as Error).message);
}

console.log(
  `${summary.prepared} prepared, ${summary.skipped} already prepared, ` +
    `${summary.failures.length} failed`,
);
for (const failure of summary.failures) {
  console.log(`failed: ${failure.video}: ${failure.reason}`);
}
console.log(`split files: ${summary.splitFiles.join(", ")}`);
for (const split of summary.emptySplits) {
  writeErr(
    `warning: the ${split} split has no videos; add a split column to ` +
      `--labels or change --test-fraction.\n`,
  );
}
console.log(
  `train with: deno task repro --dataset ${values.layout} --data-root ` +
    summary.dataRoot,
);
Deno.exit(summary.failures.length > 0 ? 2 : 0);
