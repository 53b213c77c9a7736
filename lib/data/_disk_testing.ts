/**
 * Test helpers that build tiny on-disk datasets in every layout. Media
 * come from ffmpeg's test sources (a sine tone and the `testsrc` pattern)
 * or, where a test must run without ffmpeg, from wavefile and jpeg-js.
 *
 * @module
 */

import jpeg from "jpeg-js";
import wavefile from "wavefile";
import { join } from "node:path";
import type { DiskDatasetKind } from "./_layouts.ts";
import type { Split } from "./types.ts";

/** One clip of a fixture dataset. */
export interface FixtureClip {
  id: string;
  /** Class name (CREMA-D emotion code, AVE category, ...) or index. */
  label: string | number;
  split: Split;
}

/** Media settings of a fixture. */
export interface FixtureMedia {
  /** ffmpeg test sources, or JavaScript encoders. @default {"ffmpeg"} */
  source?: "ffmpeg" | "js";
  /** Clip length in seconds. @default {1} */
  seconds?: number;
  /** WAV sample rate in Hz. @default {16000} */
  sampleRate?: number;
  /** Frames per clip (1 fps). @default {2} */
  frames?: number;
  /** Frame width in pixels. @default {48} */
  width?: number;
  /** Frame height in pixels. @default {36} */
  height?: number;
}

/**
 * Returns why ffmpeg cannot be used, or undefined when `ffmpeg -version`
 * runs.
 */
export async function findFfmpegProblem(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("ffmpeg", {
      args: ["-version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : "ffmpeg -version failed";
  } catch (error) {
    return `ffmpeg is not installed (${(error as Error).message}); ` +
      `install Debian's ffmpeg package`;
  }
}

/** Runs ffmpeg quietly and raises with its error output on failure. */
export async function ffmpeg(...args: string[]): Promise<void> {
  const output = await new Deno.Command("ffmpeg", {
    args: ["-nostdin", "-v", "error", "-y", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `ffmpeg ${args.join(" ")} failed: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
}

/** Writes a mono 16-bit WAV file of `samples` in [-1, 1]. */
export function writeWav(
  path: string,
  samples: Float32Array,
  sampleRate: number,
): void {
  const wav = new wavefile.WaveFile();
  const ints = Int16Array.from(
    samples,
    (x) => Math.round(Math.max(-1, Math.min(1, x)) * 32767),
  );
  wav.fromScratch(1, sampleRate, "16", ints);
  Deno.writeFileSync(path, wav.toBuffer());
}

/** Writes a JPEG of a flat colour, or of `pixel(x, y)` when given. */
export function writeJpeg(
  path: string,
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): void {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const [r, g, b] = pixel(x, y);
      data[p] = r;
      data[p + 1] = g;
      data[p + 2] = b;
      data[p + 3] = 255;
    }
  }
  Deno.writeFileSync(path, jpeg.encode({ width, height, data }, 95).data);
}

/**
 * Writes one clip: `audioPath` (a tone whose pitch depends on `tone`) and
 * `frames` JPEGs named 00001.jpg, 00002.jpg, ... in `framesDir`.
 */
export async function writeClip(
  audioPath: string,
  framesDir: string,
  tone: number,
  media: FixtureMedia = {},
): Promise<void> {
  const seconds = media.seconds ?? 1;
  const rate = media.sampleRate ?? 16000;
  const frames = media.frames ?? 2;
  const width = media.width ?? 48;
  const height = media.height ?? 36;
  const frequency = 300 + 150 * tone;
  await Deno.mkdir(framesDir, { recursive: true });

  if ((media.source ?? "ffmpeg") === "ffmpeg") {
    await ffmpeg(
      "-f",
      "lavfi",
      "-i",
      `sine=frequency=${frequency}:sample_rate=${rate}:duration=${seconds}`,
      "-f",
      "lavfi",
      "-i",
      `testsrc=size=${width}x${height}:rate=1:duration=${frames}`,
      "-map",
      "0:a",
      "-ac",
      "1",
      audioPath,
      "-map",
      "1:v",
      "-q:v",
      "5",
      join(framesDir, "%05d.jpg"),
    );
    return;
  }

  const samples = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < samples.length; i++) {
    samples[i] = 0.5 * Math.sin((2 * Math.PI * frequency * i) / rate);
  }
  writeWav(audioPath, samples, rate);

  for (let f = 0; f < frames; f++) {
    const name = `${String(f + 1).padStart(5, "0")}.jpg`;
    writeJpeg(
      join(framesDir, name),
      width,
      height,
      (x, y) => [(x * 5 + f * 40) % 256, (y * 7) % 256, (tone * 60) % 256],
    );
  }
}

function labelIndex(clip: FixtureClip, clips: FixtureClip[]): number {
  if (typeof clip.label === "number") return clip.label;
  const names = [...new Set(clips.map((c) => String(c.label)))].sort();
  return names.indexOf(clip.label);
}

/**
 * Builds a dataset of `clips` in `kind`'s default layout under `dir`.
 *
 * @returns The data root to pass to `loadDiskDataset` (the manifest file
 * for "manifest").
 */
export async function buildFixture(
  kind: DiskDatasetKind,
  dir: string,
  clips: FixtureClip[],
  media: FixtureMedia = {},
): Promise<string> {
  const folders: Record<DiskDatasetKind, [string, string]> = {
    cremad: ["AudioWAV", "Image-01-FPS"],
    ave: ["Audio", "Image-01-FPS"],
    ks: ["audio", "visual"],
    manifest: ["media", "media"],
  };
  const [audioDir, framesDir] = folders[kind];
  await Deno.mkdir(join(dir, audioDir), { recursive: true });
  for (const clip of clips) {
    await writeClip(
      join(dir, audioDir, `${clip.id}.wav`),
      join(dir, framesDir, clip.id),
      labelIndex(clip, clips),
      media,
    );
  }

  const lines = (split: Split, line: (clip: FixtureClip) => string) =>
    clips.filter((c) => c.split === split).map(line).join("\n") + "\n";
  switch (kind) {
    case "cremad":
      for (const split of ["train", "test"] as const) {
        await Deno.writeTextFile(
          join(dir, `${split}.csv`),
          lines(split, (c) => `${c.id},${c.label}`),
        );
      }
      return dir;
    case "ave": {
      const names = { train: "trainSet", val: "valSet", test: "testSet" };
      for (const split of ["train", "val", "test"] as const) {
        await Deno.writeTextFile(
          join(dir, `${names[split]}.txt`),
          lines(split, (c) => `${c.label}&${c.id}&good&0&10`),
        );
      }
      return dir;
    }
    case "ks":
      for (const split of ["train", "test"] as const) {
        await Deno.writeTextFile(
          join(dir, `${split}.csv`),
          lines(
            split,
            (c) =>
              typeof c.label === "number"
                ? `${c.id},0,10,${c.label}`
                : `${c.label},${c.id}`,
          ),
        );
      }
      return dir;
    case "manifest": {
      const rows = clips.map((c) =>
        `${c.split},${c.label},media/${c.id}.wav,media/${c.id}`
      );
      const path = join(dir, "manifest.csv");
      await Deno.writeTextFile(
        path,
        ["split,label,audio,frames", ...rows].join("\n") + "\n",
      );
      return path;
    }
  }
}

/** Returns `count` clips per split with labels taken in turn from `labels`. */
export function fixtureClips(
  labels: readonly (string | number)[],
  counts: Partial<Record<Split, number>>,
): FixtureClip[] {
  const clips: FixtureClip[] = [];
  for (const split of ["train", "val", "test"] as const) {
    for (let i = 0; i < (counts[split] ?? 0); i++) {
      clips.push({
        id: `${split}-${String(i).padStart(3, "0")}`,
        label: labels[i % labels.length],
        split,
      });
    }
  }
  return clips;
}
