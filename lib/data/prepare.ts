/**
 * Conversion of raw videos into an on-disk dataset layout with ffmpeg:
 * 1 fps JPEG frames and 16 kHz mono 16-bit WAV audio per video, plus the
 * split files the loaders read. Work is resumable: a clip whose WAV file
 * and frame folder exist is skipped, and both are written under temporary
 * names and renamed when complete. A video that ffmpeg cannot read is
 * reported in the summary and left out of the split files.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import { CREMAD_EMOTIONS } from "./_layouts.ts";
import { carveValidation } from "./_split.ts";
import type { Split } from "./types.ts";

/** Layouts that {@linkcode prepareVideos} writes. */
export const PREPARE_LAYOUTS = ["cremad", "manifest"] as const;

/** A layout that {@linkcode prepareVideos} writes. */
export type PrepareLayout = typeof PREPARE_LAYOUTS[number];

/** One row of a label list. */
export interface LabelRow {
  /** Video file name (or stem) inside the video folder. */
  video: string;
  /** Clip id used for output names: the video's stem. */
  id: string;
  label: string;
  /** Split from the list's third column, if it has one. */
  split?: Split;
  /** 1-based line number in the label list. */
  line: number;
}

/** Settings of {@linkcode prepareVideos}. */
export interface PrepareOptions {
  /** Folder of the raw videos (any container ffmpeg reads). */
  videoDir: string;
  /** CSV of `video,label` or `video,label,split` lines. */
  labelsFile: string;
  /** Output dataset folder. */
  outDir: string;
  /**
   * "cremad" writes AudioWAV/, Image-01-FPS/, train.csv and test.csv
   * (labels must be CREMA-D emotion codes); "manifest" writes audio/,
   * frames/ and manifest.csv.
   * @default {"manifest"}
   */
  layout?: PrepareLayout;
  /** Videos converted at the same time. @default {2} */
  jobs?: number;
  /**
   * Fraction of videos assigned to test when the label list has no split
   * column, stratified by label.
   * @default {0.1}
   */
  testFraction?: number;
  /** Seed of that assignment. @default {0} */
  seed?: number;
  /** Seconds after which one video's ffmpeg run is stopped. @default {600} */
  timeoutSeconds?: number;
  /** Called after each video with the counts so far. */
  onProgress?: (progress: PrepareProgress) => void;
}

/** Counts reported after each video. */
export interface PrepareProgress {
  /** Videos finished (prepared, skipped or failed). */
  done: number;
  total: number;
  prepared: number;
  skipped: number;
  failed: number;
  /** Id of the video just finished. */
  id: string;
  /** Outcome of that video. */
  outcome: "prepared" | "skipped" | "failed";
}

/** A video that could not be converted. */
export interface PrepareFailure {
  video: string;
  /** ffprobe's or ffmpeg's error, or what is missing. */
  reason: string;
}

/** Outcome of {@linkcode prepareVideos}. */
export interface PrepareSummary {
  /** Videos converted by this call. */
  prepared: number;
  /** Videos found already converted. */
  skipped: number;
  failures: PrepareFailure[];
  /** Split files or manifest written, absolute paths. */
  splitFiles: string[];
  /** Data root to pass to `loadDiskDataset` (the manifest for "manifest"). */
  dataRoot: string;
  /**
   * Train or test splits left without videos, because every video
   * assigned to them failed; the loaders reject such a dataset.
   */
  emptySplits: Split[];
}

const SPLIT_NAMES = ["train", "val", "test"];

/**
 * Reads a label list: `video,label` or `video,label,split` per line, with
 * an optional header line starting with `video`.
 *
 * @throws {Error} If a line is malformed or a video is listed twice; the
 * message names the file and line.
 */
export function readLabelList(path: string): LabelRow[] {
  const rows: LabelRow[] = [];
  const seen = new Map<string, number>();
  const lines = readFileSync(path, "utf8").split("\n");
  lines.forEach((raw, i) => {
    const text = raw.replace(/\r$/, "").trim();
    if (text === "") return;
    const fields = text.split(",").map((field) => field.trim());
    if (rows.length === 0 && fields[0].toLowerCase() === "video") return;
    const split = fields[2];
    if (
      fields.length < 2 || fields.length > 3 || fields[0] === "" ||
      fields[1] === "" || (split !== undefined && !SPLIT_NAMES.includes(split))
    ) {
      throw new Error(
        `${path} line ${i + 1}: expected "video,label" or ` +
          `"video,label,split" with split train, val or test, got ` +
          `${JSON.stringify(text)}.`,
      );
    }
    const id = basename(fields[0], extname(fields[0]));
    const previous = seen.get(id);
    if (previous !== undefined) {
      throw new Error(
        `${path} line ${i + 1}: video "${id}" is already listed on line ` +
          `${previous}; each video may appear once.`,
      );
    }
    seen.set(id, i + 1);
    rows.push({
      video: fields[0],
      id,
      label: fields[1],
      split: split as Split | undefined,
      line: i + 1,
    });
  });
  if (rows.length === 0) {
    throw new Error(`Label list ${path} lists no videos.`);
  }
  return rows;
}

interface LayoutFolders {
  audio: string;
  frames: string;
}

function foldersOf(layout: PrepareLayout, outDir: string): LayoutFolders {
  return layout === "cremad"
    ? { audio: join(outDir, "AudioWAV"), frames: join(outDir, "Image-01-FPS") }
    : { audio: join(outDir, "audio"), frames: join(outDir, "frames") };
}

// Checks labels against the layout and assigns splits where the list has
// none. CREMA-D lists hold train and test only.
function assignSplits(
  rows: LabelRow[],
  layout: PrepareLayout,
  labelsFile: string,
  testFraction: number,
  seed: number,
): Map<string, Split> {
  const codes: readonly string[] = CREMAD_EMOTIONS;
  for (const row of rows) {
    if (layout === "cremad" && !codes.includes(row.label)) {
      throw new Error(
        `${labelsFile} line ${row.line}: label "${row.label}" is not a ` +
          `CREMA-D emotion code; expected one of ${codes.join(", ")}, or ` +
          `use --layout manifest for other labels.`,
      );
    }
    if (layout === "cremad" && row.split === "val") {
      throw new Error(
        `${labelsFile} line ${row.line}: the CREMA-D layout has no val ` +
          `split file (the loader carves one from train); use train or ` +
          `test, or --layout manifest.`,
      );
    }
  }
  const splits = new Map<string, Split>();
  const unassigned = rows.filter((row) => row.split === undefined);
  for (const row of rows) if (row.split) splits.set(row.id, row.split);
  const labels = [...new Set(unassigned.map((row) => row.label))].sort();
  const { val: test } = carveValidation(
    unassigned.map((row) => ({ id: row.id, label: labels.indexOf(row.label) })),
    testFraction,
    seed,
  );
  const testIds = new Set(test.map((item) => item.id));
  for (const row of unassigned) {
    splits.set(row.id, testIds.has(row.id) ? "test" : "train");
  }
  return splits;
}

function findVideo(videoDir: string, name: string): string | undefined {
  const direct = join(videoDir, name);
  if (extname(name) !== "" && existsSync(direct)) return direct;
  const matches: string[] = [];
  for (const item of Deno.readDirSync(videoDir)) {
    if (item.isFile && basename(item.name, extname(item.name)) === name) {
      matches.push(item.name);
    }
  }
  matches.sort();
  return matches.length > 0 ? join(videoDir, matches[0]) : undefined;
}

function isPrepared(folders: LayoutFolders, id: string): boolean {
  if (!existsSync(join(folders.audio, `${id}.wav`))) return false;
  try {
    for (const item of Deno.readDirSync(join(folders.frames, id))) {
      if (item.name.endsWith(".jpg")) return true;
    }
  } catch {
    return false;
  }
  return false;
}

async function run(
  command: string,
  args: string[],
  timeoutSeconds: number,
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutSeconds * 1000),
  }).output();
  const decoder = new TextDecoder();
  return {
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] || "no error output";
}

// Converts one video, or returns why it failed.
async function convert(
  video: string,
  id: string,
  folders: LayoutFolders,
  timeoutSeconds: number,
): Promise<string | undefined> {
  const probe = await run("ffprobe", [
    "-v",
    "error",
    "-show_entries",
    "stream=codec_type",
    "-of",
    "csv=p=0",
    video,
  ], timeoutSeconds);
  if (!probe.success) return `ffprobe failed: ${lastLine(probe.stderr)}`;
  const streams = probe.stdout.split("\n").map((line) => line.trim());
  if (!streams.includes("video")) return "no video stream";
  if (!streams.includes("audio")) return "no audio stream";

  // Partial output of an interrupted run is removed first.
  const framesTemp = join(folders.frames, `.${id}.partial`);
  const audioTemp = join(folders.audio, `.${id}.partial.wav`);
  await Deno.remove(framesTemp, { recursive: true }).catch(() => {});
  await Deno.mkdir(framesTemp, { recursive: true });
  const result = await run("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-y",
    "-i",
    video,
    "-map",
    "0:v:0",
    "-vf",
    "fps=1",
    "-q:v",
    "2",
    join(framesTemp, "%05d.jpg"),
    "-map",
    "0:a:0",
    "-ac",
    "1",
    "-ar",
    "16000",
    "-c:a",
    "pcm_s16le",
    "-f",
    "wav",
    audioTemp,
  ], timeoutSeconds).catch((error: Error) => ({
    success: false,
    stdout: "",
    stderr: error.name === "TimeoutError"
      ? `timed out after ${timeoutSeconds} s`
      : error.message,
  }));
  const frameCount = [...Deno.readDirSync(framesTemp)].length;
  if (!result.success || frameCount === 0) {
    await Deno.remove(framesTemp, { recursive: true }).catch(() => {});
    await Deno.remove(audioTemp).catch(() => {});
    return result.success
      ? "ffmpeg wrote no frames"
      : `ffmpeg failed: ${lastLine(result.stderr)}`;
  }

  // Frames first, audio last: a clip counts as prepared once its WAV file
  // exists, so an interruption between the renames redoes the clip.
  const frames = join(folders.frames, id);
  await Deno.remove(frames, { recursive: true }).catch(() => {});
  await Deno.rename(framesTemp, frames);
  await Deno.rename(audioTemp, join(folders.audio, `${id}.wav`));
  return undefined;
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const temporary = `${path}.partial`;
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, path);
}

async function writeSplitFiles(
  layout: PrepareLayout,
  outDir: string,
  rows: LabelRow[],
  splits: Map<string, Split>,
): Promise<string[]> {
  if (layout === "cremad") {
    const paths: string[] = [];
    for (const split of ["train", "test"] as const) {
      const path = join(outDir, `${split}.csv`);
      const lines = rows.filter((row) => splits.get(row.id) === split)
        .map((row) => `${row.id},${row.label}\n`);
      await writeAtomic(path, lines.join(""));
      paths.push(path);
    }
    return paths;
  }
  const path = join(outDir, "manifest.csv");
  const lines = rows.map((row) =>
    [
      splits.get(row.id)!,
      csvField(row.label),
      csvField(`audio/${row.id}.wav`),
      csvField(`frames/${row.id}`),
    ].join(",") + "\n"
  );
  await writeAtomic(path, "split,label,audio,frames\n" + lines.join(""));
  return [path];
}

/**
 * Converts the videos of a label list into a dataset layout with ffmpeg
 * and writes its split files, which list every video converted by this or
 * an earlier call.
 *
 * @throws {Error} If the label list is invalid, the video folder is
 * missing or ffmpeg/ffprobe cannot be started. A video that fails to
 * convert does not raise; it is listed in the summary.
 */
export async function prepareVideos(
  options: PrepareOptions,
): Promise<PrepareSummary> {
  const layout = options.layout ?? "manifest";
  if (!(PREPARE_LAYOUTS as readonly string[]).includes(layout)) {
    throw new RangeError(
      `prepareVideos: layout must be ${PREPARE_LAYOUTS.join(" or ")}, got ` +
        `${JSON.stringify(layout)}`,
    );
  }
  const jobs = options.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new RangeError(`prepareVideos: jobs must be >= 1, got ${jobs}`);
  }
  const testFraction = options.testFraction ?? 0.1;
  if (!(testFraction >= 0 && testFraction <= 0.5)) {
    throw new RangeError(
      `prepareVideos: testFraction must be in [0, 0.5], got ${testFraction}`,
    );
  }
  const videoDir = resolve(options.videoDir);
  if (!existsSync(videoDir)) {
    throw new Error(`Video folder not found: ${videoDir}.`);
  }
  const outDir = resolve(options.outDir);
  const rows = readLabelList(resolve(options.labelsFile));
  const splits = assignSplits(
    rows,
    layout,
    options.labelsFile,
    testFraction,
    options.seed ?? 0,
  );
  await checkTools();

  const folders = foldersOf(layout, outDir);
  await Deno.mkdir(folders.audio, { recursive: true });
  await Deno.mkdir(folders.frames, { recursive: true });
  const failures: PrepareFailure[] = [];
  const failedIds = new Set<string>();
  let prepared = 0;
  let skipped = 0;
  let done = 0;
  let next = 0;

  const worker = async () => {
    while (next < rows.length) {
      const row = rows[next++];
      let outcome: PrepareProgress["outcome"];
      if (isPrepared(folders, row.id)) {
        outcome = "skipped";
        skipped++;
      } else {
        const video = findVideo(videoDir, row.video);
        const reason = video === undefined
          ? `video file not found in ${videoDir}`
          : await convert(
            video,
            row.id,
            folders,
            options.timeoutSeconds ?? 600,
          );
        if (reason === undefined) {
          outcome = "prepared";
          prepared++;
        } else {
          outcome = "failed";
          failures.push({ video: video ?? row.video, reason });
          failedIds.add(row.id);
        }
      }
      done++;
      options.onProgress?.({
        done,
        total: rows.length,
        prepared,
        skipped,
        failed: failures.length,
        id: row.id,
        outcome,
      });
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(jobs, rows.length) }, worker),
  );

  // Splits are assigned over the whole list before conversion, so that a
  // resumed run keeps every video's split even when others failed.
  const kept = rows.filter((row) => !failedIds.has(row.id));
  const splitFiles = await writeSplitFiles(layout, outDir, kept, splits);
  const emptySplits = (["train", "test"] as const).filter((split) =>
    !kept.some((row) => splits.get(row.id) === split)
  );
  return {
    emptySplits,
    prepared,
    skipped,
    failures,
    splitFiles,
    dataRoot: layout === "manifest" ? splitFiles[0] : outDir,
  };
}

async function checkTools(): Promise<void> {
  for (const tool of ["ffmpeg", "ffprobe"]) {
    try {
      await new Deno.Command(tool, {
        args: ["-version"],
        stdout: "null",
        stderr: "null",
      }).output();
    } catch (error) {
      throw new Error(
        `Cannot start ${tool}: ${(error as Error).message}. Install ffmpeg ` +
          `(Debian: apt-get install ffmpeg).`,
      );
    }
  }
}
