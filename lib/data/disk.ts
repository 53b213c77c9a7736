/**
 * Datasets read from disk in the layouts of CREMA-D, AVE and
 * Kinetics-Sounds, or listed in a manifest CSV; `docs/datasets.md`
 * describes each layout.
 *
 * Audio: each WAV file is averaged to mono, resampled to 16 kHz (a
 * Hann-windowed sinc, 16 zero crossings per side), tiled when shorter
 * than `audioSeconds` or cut to its first `audioSeconds`, and turned into
 * a log spectrogram by {@linkcode logSpectrogram} (257 x 299 for 3 s,
 * 257 x 1004 for 10 s).
 *
 * Frames: a clip's JPEG frames are sorted by name and cut into T uniform
 * segments. Training takes a random frame inside each segment, a random
 * resized crop (area 8-100 %, aspect ratio 3/4 to 4/3) and a horizontal
 * flip with probability 0.5, drawn per frame from the run seed, epoch and
 * sample index. Evaluation takes the segment centres and resizes whole
 * frames. Frames end as `imageSize` squares of 3 channels, normalised with
 * the ImageNet mean and standard deviation.
 *
 * Spectrograms and decoded frames are cached on disk (see `cacheDir`), so
 * later epochs and runs skip decoding.
 *
 * Limitations:
 * - Only WAV audio and JPEG frames are read; `deno task prepare` converts
 *   videos into them.
 * - The content hash covers media file sizes and modification times, not
 *   their bytes, so an edit that keeps both goes unnoticed.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deriveSeed, Random } from "../_random.ts";
import {
  decodeWav,
  fitToLength,
  resample,
  RESAMPLER_ZERO_CROSSINGS,
} from "./_audio.ts";
import {
  type CacheCodec,
  cacheKey,
  type CacheStats,
  PreprocessCache,
} from "./_cache.ts";
import { pickFrames } from "./_frames.ts";
import {
  CROP_RATIO,
  CROP_SCALE,
  decodeJpeg,
  flipHorizontal,
  IMAGENET_MEAN,
  IMAGENET_STD,
  normaliseImageNet,
  randomCropBox,
  resizeCrop,
  type RgbImage,
} from "./_image.ts";
import {
  DISK_DATASET_KINDS,
  type DiskDatasetKind,
  type LayoutPaths,
  parseLayout,
  type SampleEntry,
} from "./_layouts.ts";
import {
  findMedia,
  isMissing,
  type MediaFile,
  type MissingMedia,
  type SampleMedia,
} from "./_media.ts";
import { carveValidation } from "./_split.ts";
import {
  logSpectrogram,
  SPECTROGRAM_DEFAULTS,
  spectrogramFrames,
} from "./spectrogram.ts";
import type {
  AudioVisualDataset,
  BatchOptions,
  SampleBatch,
  Split,
} from "./types.ts";
import { planBatches } from "./_batch_options.ts";

export { CREMAD_EMOTIONS, DISK_DATASET_KINDS } from "./_layouts.ts";
export type { DiskDatasetKind } from "./_layouts.ts";
export type { CacheStats, ClearedCache } from "./_cache.ts";
export { clearPreprocessCache } from "./_cache.ts";

/** Settings of {@linkcode loadDiskDataset}. */
export interface DiskDatasetOptions {
  /**
   * Clip length in seconds, 0.1 to 60; shorter clips are tiled, longer
   * ones cut.
   * @default {3 for CREMA-D, 10 otherwise}
   */
  audioSeconds?: number;
  /** Frames T per sample, 1 to 32. @default {1 for CREMA-D, 3 otherwise} */
  frames?: number;
  /** Frame side H = W in pixels, 8 to 512. @default {224} */
  imageSize?: number;
  /**
   * Split file names relative to the root. A `val` entry that is left out
   * and absent from the defaults means "carve one out of train".
   * @default {CREMA-D train.csv, test.csv; AVE trainSet.txt, valSet.txt,
   * testSet.txt; Kinetics-Sounds train.csv, val.csv (used if present),
   * test.csv}
   */
  splitFiles?: Partial<Record<Split, string>>;
  /**
   * Folder of `<id>.wav` files relative to the root (not used by
   * manifests).
   * @default {CREMA-D AudioWAV, AVE Audio, Kinetics-Sounds audio}
   */
  audioDir?: string;
  /**
   * Folder of `<id>/` frame folders relative to the root (not used by
   * manifests).
   * @default {CREMA-D and AVE Image-01-FPS, Kinetics-Sounds visual}
   */
  framesDir?: string;
  /**
   * File of class names, one per line in label order, relative to the
   * root (for a manifest, to its folder). Not used by CREMA-D.
   * @default {Kinetics-Sounds: classes.txt when present; otherwise none,
   * and classes are the sorted names found in the split files}
   */
  classList?: string;
  /**
   * Skips samples whose audio file or frames are missing, and counts them
   * in `describe()`, instead of raising.
   * @default {false}
   */
  skipMissing?: boolean;
  /**
   * Fraction of the training list moved to validation when a dataset has
   * no validation list, 0 to 0.5.
   * @default {0.1}
   */
  valFraction?: number;
  /** Seed of that carved validation split (not the run seed). @default {0} */
  splitSeed?: number;
  /**
   * Folder of the preprocessing cache, or null for none.
   * @default {the repository's .cache/data}
   */
  cacheDir?: string | null;
  /** Uses at most the first n training samples. @default {all} */
  trainSize?: number;
  /** Uses at most the first n validation samples. @default {all} */
  valSize?: number;
  /** Uses at most the first n test samples. @default {all} */
  testSize?: number;
}

/** An on-disk dataset; adds its layout name and cache counters. */
export interface DiskDataset extends AudioVisualDataset {
  /** Layout the dataset was read from. */
  readonly kind: DiskDatasetKind;
  /** Returns the cache hits and misses since the dataset was opened. */
  cacheStats(): CacheStats;
}

/** Sample rate in Hz that every clip is resampled to. */
export const DISK_SAMPLE_RATE = 16000;

/** Default cache folder: `.cache/data` in the repository. */
export const DEFAULT_CACHE_DIR = fileURLToPath(
  new URL("../../.cache/data", import.meta.url),
);

interface KindDefaults {
  audioSeconds: number;
  frames: number;
  splitFiles: Partial<Record<Split, string>>;
  requiredSplits: readonly Split[];
  audioDir: string;
  framesDir: string;
  /** Class list used when it exists and `classList` is not set. */
  classList?: string;
}

/** Per-layout defaults of {@linkcode DiskDatasetOptions}. */
export const DISK_LAYOUT_DEFAULTS: Readonly<
  Record<DiskDatasetKind, Readonly<KindDefaults>>
> = Object.freeze({
  cremad: {
    audioSeconds: 3,
    frames: 1,
    splitFiles: { train: "train.csv", test: "test.csv" },
    requiredSplits: ["train", "test"],
    audioDir: "AudioWAV",
    framesDir: "Image-01-FPS",
  },
  ave: {
    audioSeconds: 10,
    frames: 3,
    splitFiles: {
      train: "trainSet.txt",
      val: "valSet.txt",
      test: "testSet.txt",
    },
    requiredSplits: ["train", "val", "test"],
    audioDir: "Audio",
    framesDir: "Image-01-FPS",
  },
  ks: {
    audioSeconds: 10,
    frames: 3,
    splitFiles: { train: "train.csv", val: "val.csv", test: "test.csv" },
    requiredSplits: ["train", "test"],
    audioDir: "audio",
    framesDir: "visual",
    classList: "classes.txt",
  },
  manifest: {
    audioSeconds: 10,
    frames: 3,
    splitFiles: {},
    requiredSplits: [],
    audioDir: "",
    framesDir: "",
  },
});

const SPLITS: readonly Split[] = ["train", "val", "test"];
const IMAGE_CHANNELS = 3;
// Samples named in the error for missing media.
const MISSING_SHOWN = 5;

interface ResolvedOptions {
  audioSeconds: number;
  frames: number;
  imageSize: number;
  skipMissing: boolean;
  valFraction: number;
  splitSeed: number;
  cacheDir: string | null;
  subset: Record<Split, number | undefined>;
  paths: LayoutPaths;
}

const OPTION_NAMES = new Set<string>([
  "audioSeconds",
  "frames",
  "imageSize",
  "splitFiles",
  "audioDir",
  "framesDir",
  "classList",
  "skipMissing",
  "valFraction",
  "splitSeed",
  "cacheDir",
  "trainSize",
  "valSize",
  "testSize",
]);

function checkNumber(
  name: string,
  value: unknown,
  min: number,
  max: number,
  integer: boolean,
): number {
  const valid = typeof value === "number" && Number.isFinite(value) &&
    value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!valid) {
    throw new RangeError(
      `loadDiskDataset: option ${name} must be ${
        integer ? "an integer" : "a number"
      } in [${min}, ${max}], got ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

function resolveOptions(
  kind: DiskDatasetKind,
  root: string,
  options: DiskDatasetOptions,
): ResolvedOptions {
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) {
      throw new TypeError(
        `loadDiskDataset: unknown option ${key}; expected one of ` +
          [...OPTION_NAMES].join(", "),
      );
    }
  }
  const defaults = DISK_LAYOUT_DEFAULTS[kind];
  const subset = {} as Record<Split, number | undefined>;
  for (const split of SPLITS) {
    const value = options[`${split}Size`];
    subset[split] = value === undefined
      ? undefined
      : checkNumber(`${split}Size`, value, 1, 2 ** 31, true);
  }

  // A class list named by the caller must exist; the default one is
  // optional.
  let classList = options.classList;
  if (
    classList === undefined && defaults.classList !== undefined &&
    existsSync(resolve(root, defaults.classList))
  ) {
    classList = defaults.classList;
  }
  const splitFiles = { ...defaults.splitFiles, ...options.splitFiles };
  const requiredSplits = [
    ...new Set([
      ...defaults.requiredSplits,
      ...Object.keys(options.splitFiles ?? {}) as Split[],
    ]),
  ];
  return {
    audioSeconds: checkNumber(
      "audioSeconds",
      options.audioSeconds ?? defaults.audioSeconds,
      0.1,
      60,
      false,
    ),
    frames: checkNumber(
      "frames",
      options.frames ?? defaults.frames,
      1,
      32,
      true,
    ),
    imageSize: checkNumber("imageSize", options.imageSize ?? 224, 8, 512, true),
    skipMissing: options.skipMissing ?? false,
    valFraction: checkNumber(
      "valFraction",
      options.valFraction ?? 0.1,
      0,
      0.5,
      false,
    ),
    splitSeed: checkNumber(
      "splitSeed",
      options.splitSeed ?? 0,
      0,
      2 ** 32 - 1,
      true,
    ),
    cacheDir: options.cacheDir === undefined
      ? DEFAULT_CACHE_DIR
      : options.cacheDir === null
      ? null
      : resolve(options.cacheDir),
    subset,
    paths: {
      splitFiles,
      requiredSplits,
      audioDir: options.audioDir ?? defaults.audioDir,
      framesDir: options.framesDir ?? defaults.framesDir,
      classList,
    },
  };
}

/** Builds the error for samples whose media are missing. */
function missingMediaError(missing: MissingMedia[]): Error {
  const shown = missing.slice(0, MISSING_SHOWN).map((item) =>
    `${item.path} (${item.reason}; ${item.entry.source})`
  );
  const more = missing.length > MISSING_SHOWN
    ? `, and ${missing.length - MISSING_SHOWN} more`
    : "";
  return new Error(
    `loadDiskDataset: ${missing.length} samples have missing media: ` +
      `${shown.join(", ")}${more}. Create them with deno task prepare, ` +
      `fix the paths, or set skipMissing to leave those samples out.`,
  );
}

// Cache entries of log spectrograms: the raw Float32 values (machine byte
// order, little-endian on the platforms Deno supports).
function spectrogramCodec(length: number): CacheCodec<Float32Array> {
  return {
    decode: (bytes) =>
      bytes.byteLength === length * 4
        ? new Float32Array(bytes.slice().buffer)
        : undefined,
    encode: (values) =>
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

// Cache entries of decoded frames: width and height as little-endian
// uint32, then the RGB bytes.
const FRAME_CODEC: CacheCodec<RgbImage> = {
  decode(bytes) {
    if (bytes.byteLength < 8) return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
    const width = view.getUint32(0, true);
    const height = view.getUint32(4, true);
    if (width < 1 || bytes.byteLength !== 8 + width * height * 3) {
      return undefined;
    }
    return { width, height, data: bytes.subarray(8) };
  },
  encode(image) {
    const bytes = new Uint8Array(8 + image.data.length);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, image.width, true);
    view.setUint32(4, image.height, true);
    bytes.set(image.data, 8);
    return bytes;
  },
};

interface SplitData {
  entries: SampleEntry[];
  media: SampleMedia[];
  skipped: number;
}

class DiskAudioVisualDataset implements DiskDataset {
  readonly name: string;
  readonly kind: DiskDatasetKind;
  readonly classNames: readonly string[];
  readonly audioShape: readonly [number, number];
  readonly visualShape: readonly [number, number, number, number];
  readonly splitSizes: Readonly<Record<Split, number>>;
  readonly contentHash: string;

  #root: string;
  #options: ResolvedOptions;
  #splits: Record<Split, SplitData>;
  #valCarved: boolean;
  #cache: PreprocessCache;
  #audioSamples: number;
  #audioSettings: Record<string, unknown>;

  constructor(
    kind: DiskDatasetKind,
    root: string,
    options: ResolvedOptions,
    classNames: string[],
    splits: Record<Split, SplitData>,
    valCarved: boolean,
    files: string[],
  ) {
    this.name = kind;
    this.kind = kind;
    this.#root = root;
    this.#options = options;
    this.#splits = splits;
    this.#valCarved = valCarved;
    this.#cache = new PreprocessCache(options.cacheDir);
    this.classNames = Object.freeze([...classNames]);
    this.#audioSamples = Math.round(options.audioSeconds * DISK_SAMPLE_RATE);
    this.audioShape = Object.freeze(
      [
        SPECTROGRAM_DEFAULTS.nFft / 2 + 1,
        spectrogramFrames(this.#audioSamples),
      ] as const,
    );
    const size = options.imageSize;
    this.visualShape = Object.freeze(
      [options.frames, size, size, IMAGE_CHANNELS] as const,
    );
    this.splitSizes = Object.freeze({
      train: splits.train.media.length,
      val: splits.val.media.length,
      test: splits.test.media.length,
    });
    this.#audioSettings = {
      sampleRate: DISK_SAMPLE_RATE,
      samples: this.#audioSamples,
      resampler: `hann-windowed sinc, ${RESAMPLER_ZERO_CROSSINGS} zero ` +
        `crossings per side`,
      fit: "tile short clips, keep the first samples of long ones",
      spectrogram: { ...SPECTROGRAM_DEFAULTS },
    };
    this.contentHash = this.#hash(files);
  }

  #hashedSettings(): Record<string, unknown> {
    const o = this.#options;
    return {
      kind: this.kind,
      audioSeconds: o.audioSeconds,
      audio: this.#audioSettings,
      frames: o.frames,
      imageSize: o.imageSize,
      frameSampling: "uniform segments: random frame in training, " +
        "centre frame in evaluation",
      cropScale: [...CROP_SCALE],
      cropRatio: [...CROP_RATIO],
      flipProbability: 0.5,
      visualMean: [...IMAGENET_MEAN],
      visualStd: [...IMAGENET_STD],
      skipMissing: o.skipMissing,
      valFraction: o.valFraction,
      splitSeed: o.splitSeed,
      splitFiles: o.paths.splitFiles,
      audioDir: o.paths.audioDir,
      framesDir: o.paths.framesDir,
      classList: o.paths.classList ?? null,
    };
  }

  // SHA-256 over the settings, the bytes of the split files and, per
  // sample, the relative paths, sizes and modification times of its media.
  // Media bytes are left out so that hashing stays fast on large datasets.
  #hash(files: string[]): string {
    const hash = createHash("sha256");
    hash.update(JSON.stringify(this.#hashedSettings()));
    for (const file of files) {
      hash.update(relative(this.#root, file));
      hash.update(readFileSync(file));
    }
    const describeFile = (file: MediaFile) => [
      relative(this.#root, file.path),
      file.size,
      file.mtime,
    ];
    for (const split of SPLITS) {
      const { entries, media } = this.#splits[split];
      media.forEach((item, i) => {
        hash.update(JSON.stringify([
          split,
          entries[i].label,
          describeFile(item.audio),
          item.frames.map(describeFile),
        ]));
      });
    }
    return hash.digest("hex");
  }

  describe(): Record<string, unknown> {
    const skipped = {} as Record<Split, number>;
    for (const split of SPLITS) skipped[split] = this.#splits[split].skipped;
    return {
      name: this.name,
      root: this.#root,
      ...this.#hashedSettings(),
      classes: [...this.classNames],
      requestedSizes: { ...this.#options.subset },
      splitSizes: { ...this.splitSizes },
      validation: this.#valCarved
        ? `carved from the training list: ${
          Math.round(this.#options.valFraction * 100)
        }% of it, stratified by class, seeded by splitSeed ` +
          `${this.#options.splitSeed}`
        : "from the validation split file",
      skippedMissing: skipped,
      cacheDir: this.#options.cacheDir,
      audioShape: [...this.audioShape],
      visualShape: [...this.visualShape],
      contentHash: this.contentHash,
    };
  }

  cacheStats(): CacheStats {
    return { ...this.#cache.stats };
  }

  *batches(split: Split, options: BatchOptions): Iterable<SampleBatch> {
    const { batchSize, seed, epoch } = options;
    const size = this.splitSizes[split];
    const { order, training, dropLast } = planBatches(
      "DiskDataset.batches",
      split,
      size,
      options,
    );

    const audioSize = this.audioShape[0] * this.audioShape[1];
    const visualSize = this.visualShape.reduce((a, b) => a * b, 1);
    for (let start = 0; start < size; start += batchSize) {
      const count = Math.min(batchSize, size - start);
      if (dropLast && count < batchSize) break;
      const batch: SampleBatch = {
        size: count,
        audio: new Float32Array(count * audioSize),
        visual: new Float32Array(count * visualSize),
        labels: new Int32Array(count),
        indices: new Int32Array(count),
      };
      for (let b = 0; b < count; b++) {
        const index = order[start + b];
        const { entries, media } = this.#splits[split];
        batch.labels[b] = entries[index].label;
        batch.indices[b] = index;
        batch.audio.set(this.#spectrogram(media[index].audio), b * audioSize);
        const random = training
          ? new Random(deriveSeed(seed, "frames", split, epoch, index))
          : undefined;
        this.#visual(media[index].frames, random, batch.visual, b * visualSize);
      }
      yield batch;
    }
  }

  // Returns the log spectrogram [F, W] of one audio file.
  #spectrogram(file: MediaFile): Float32Array {
    const length = this.audioShape[0] * this.audioShape[1];
    const key = cacheKey(file, { spectrogram: this.#audioSettings });
    return this.#cache.getOrCompute(key, spectrogramCodec(length), () => {
      const clip = decodeWav(Deno.readFileSync(file.path), file.path);
      const resampled = resample(
        clip.samples,
        clip.sampleRate,
        DISK_SAMPLE_RATE,
      );
      if (resampled.length === 0) {
        throw new Error(
          `WAV file ${file.path} is too short: ${clip.samples.length} ` +
            `samples at ${clip.sampleRate} Hz give none at 16 kHz.`,
        );
      }
      const signal = fitToLength(resampled, this.#audioSamples);
      return logSpectrogram(signal).data;
    });
  }

  #decodedFrame(file: MediaFile): RgbImage {
    const key = cacheKey(file, { frame: "rgb8" });
    return this.#cache.getOrCompute(
      key,
      FRAME_CODEC,
      () => decodeJpeg(Deno.readFileSync(file.path), file.path),
    );
  }

  // Writes T normalised frames [T, H, W, 3] at `offset`; `random` is set
  // in training only.
  #visual(
    frames: MediaFile[],
    random: Random | undefined,
    output: Float32Array,
    offset: number,
  ): void {
    const size = this.#options.imageSize;
    const frameSize = size * size * IMAGE_CHANNELS;
    const picks = pickFrames(frames.length, this.#options.frames, random);
    picks.forEach((pick, t) => {
      const image = this.#decodedFrame(frames[pick]);
      const box = random === undefined
        ? { left: 0, top: 0, width: image.width, height: image.height }
        : randomCropBox(image.width, image.height, random);
      const pixels = resizeCrop(image, box, size);
      if (random !== undefined && random.next() < 0.5) {
        flipHorizontal(pixels, size);
      }
      normaliseImageNet(pixels, output, offset + t * frameSize);
    });
  }
}

/** Resolves the data root: the manifest CSV for "manifest", else a folder. */
function resolveRoot(kind: DiskDatasetKind, root: string): {
  root: string;
  layoutRoot: string;
} {
  const path = resolve(root);
  let info;
  try {
    info = statSync(path);
  } catch {
    throw new Error(
      `loadDiskDataset: data root ${path} not found; pass the folder of ` +
        `the ${kind} dataset${
          kind === "manifest" ? " or its manifest CSV" : ""
        }.`,
    );
  }
  if (kind === "manifest") {
    const manifest = info.isDirectory() ? join(path, "manifest.csv") : path;
    return { root: dirname(manifest), layoutRoot: manifest };
  }
  if (!info.isDirectory()) {
    throw new Error(
      `loadDiskDataset: data root ${path} is a file; pass the folder of ` +
        `the ${kind} dataset.`,
    );
  }
  return { root: path, layoutRoot: path };
}

/**
 * Loads an on-disk dataset: reads its split files, checks that every
 * sample's WAV file and frames exist, and returns batches that decode
 * (or read from the cache) on demand.
 *
 * Training batches are shuffled by the run seed and epoch; frame choice,
 * crop and flip are drawn from the run seed, epoch and sample index.
 * Evaluation batches are identical in every epoch and run.
 *
 * @param kind Layout: "cremad", "ave", "ks" or "manifest".
 * @param root Dataset folder; for "manifest", the manifest CSV or a
 * folder that contains `manifest.csv`.
 * @param options Clip length, frame settings, file names and cache.
 * @returns The dataset, with audio [B, 257, W, 1] and visual
 * [B, T, imageSize, imageSize, 3].
 * @throws {RangeError} If an option is outside its range.
 * @throws {TypeError} If an option name is unknown.
 * @throws {Error} If a split file is missing, a line is malformed or names
 * an unknown class (the message names the file and line), or media are
 * missing and `skipMissing` is off (the message lists the first paths
 * and the count). Unreadable WAV or JPEG files raise from `batches()`,
 * naming the file.
 *
 * @example
 * ```ts ignore
 * import { loadDiskDataset } from "./disk.ts";
 *
 * const dataset = await loadDiskDataset("cremad", "/data/CREMA-D", {
 *   imageSize: 112,
 * });
 * console.log(dataset.splitSizes, dataset.describe().validation);
 * ```
 */
export function loadDiskDataset(
  kind: DiskDatasetKind,
  root: string,
  options: DiskDatasetOptions = {},
): Promise<DiskDataset> {
  // The work is synchronous (batches() must be too); the promise keeps
  // the signature open for asynchronous scanning later.
  return Promise.resolve().then(() => openSync(kind, root, options));
}

function openSync(
  kind: DiskDatasetKind,
  root: string,
  options: DiskDatasetOptions,
): DiskDataset {
  if (!(DISK_DATASET_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(
      `loadDiskDataset: unknown dataset kind "${kind}"; expected one of ` +
        `${DISK_DATASET_KINDS.join(", ")}`,
    );
  }
  const where = resolveRoot(kind, root);
  const resolved = resolveOptions(kind, where.root, options);
  const layout = parseLayout(kind, where.layoutRoot, resolved.paths);

  // The validation split is carved from the listed training entries before
  // missing media are dropped, so it does not change when files appear.
  let { train, val, test } = layout.splits;
  const valCarved = val === undefined;
  if (val === undefined) {
    ({ train, val } = carveValidation(
      train,
      resolved.valFraction,
      resolved.splitSeed,
    ));
  }

  const lists: Record<Split, SampleEntry[]> = { train, val, test };
  const splits = {} as Record<Split, SplitData>;
  const missing: MissingMedia[] = [];
  for (const split of SPLITS) {
    const data: SplitData = { entries: [], media: [], skipped: 0 };
    for (const entry of lists[split]) {
      const media = findMedia(entry);
      if (isMissing(media)) {
        missing.push(media);
        data.skipped++;
        continue;
      }
      data.entries.push(entry);
      data.media.push(media);
    }
    const limit = resolved.subset[split];
    if (limit !== undefined && limit < data.media.length) {
      data.entries.length = limit;
      data.media.length = limit;
    }
    splits[split] = data;
  }
  if (missing.length > 0 && !resolved.skipMissing) {
    throw missingMediaError(missing);
  }
  for (const split of SPLITS) {
    if (splits[split].media.length === 0) {
      throw new Error(
        `loadDiskDataset: the ${split} split of ${where.layoutRoot} has no ` +
          `usable samples (${splits[split].skipped} skipped for missing ` +
          `media).`,
      );
    }
  }
  return new DiskAudioVisualDataset(
    kind,
    where.root,
    resolved,
    layout.classNames,
    splits,
    valCarved,
    layout.files,
  );
}
