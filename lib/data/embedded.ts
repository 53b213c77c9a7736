/**
 * "Embedded digits", the default dataset that ships with the toolkit: real
 * MNIST handwritten digit images paired with the spoken digit word from
 * synthetic espeak-ng speakers, ten classes ("zero" to "nine"). Speakers
 * and images are disjoint across train, val and test.
 *
 * The two modalities are made unequal on purpose, at load time: noise is
 * mixed into the speech and the images are noised, occluded and optionally
 * blurred or flattened, with the strengths in {@linkcode EMBEDDED_DEFAULTS}.
 *
 * Audio: each clip (at most 1 s, 16 kHz) is placed in a 1 s window, noise
 * is added, and {@linkcode logSpectrogram} turns it into 257 x 98.
 * Visual: T noisy views of the same digit image, scaled to [0, 1], then
 * normalised with the MNIST mean 0.1307 and standard deviation 0.3081.
 *
 * Limitations:
 * - The speech is synthetic: 84 espeak-ng voice variants, not recordings.
 * - Both modalities always carry the same label, so either one alone can
 *   reach high accuracy. Only the degradation settings decide which
 *   modality dominates.
 *
 * @module
 */

import { deriveSeed, Random } from "../_random.ts";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  addPixelNoise,
  adjustContrast,
  fillNormal,
  gaussianBlur,
  meanPower,
  mixAtSnr,
  occlude,
  OCCLUSION_FILL,
  placeDigit,
} from "./_degrade.ts";
import { type EmbeddedStore, readEmbeddedStore } from "./_embedded_store.ts";
import { logSpectrogram, SPECTROGRAM_DEFAULTS } from "./spectrogram.ts";
import type {
  AudioVisualDataset,
  BatchOptions,
  SampleBatch,
  Split,
} from "./types.ts";
import { planBatches } from "./_batch_options.ts";

/** Kind of noise mixed into the speech. */
export type AudioNoise = "white" | "babble";

/** Settings of {@linkcode loadEmbeddedDigits}. */
export interface EmbeddedDigitsOptions {
  /**
   * Folder with index.json, clips.bin and images.bin.
   * @default {the repository's data/embedded}
   */
  dataDir?: string | URL;
  /**
   * Seed of the evaluation noise. Evaluation batches depend only on this
   * seed and the sample index, not on the run seed, so every run is scored
   * on the same val and test data and `contentHash` identifies it.
   * @default {0}
   */
  evaluationSeed?: number;
  /** Views T of the digit per sample, 1 to 3. @default {1} */
  frames?: number;
  /**
   * Frame side H = W in pixels, 28 to 224. The 28-pixel digit is scaled by
   * `imageSize / 32`, so at 32 it is copied unscaled into the centre.
   * @default {32}
   */
  imageSize?: number;
  /** Channels C, 1 or 3 (the grey value repeated). @default {1} */
  channels?: 1 | 3;
  /**
   * Noise mixed into the speech: "white" Gaussian noise, or "babble", the
   * sum of 6 clips by other speakers of the same split at random positions.
   * @default {"white"}
   */
  audioNoise?: AudioNoise;
  /**
   * Speech-to-noise power ratio in dB, -30 to 60, or null for no noise.
   * Speech power is the mean square of the clip itself; noise power is
   * measured over the whole 1 s window.
   * @default {EMBEDDED_DEFAULTS.audioSnrDb}
   */
  audioSnrDb?: number | null;
  /**
   * Standard deviation of Gaussian pixel noise on [0, 1] images, 0 to 2;
   * pixels are clipped to [0, 1] afterwards.
   * @default {EMBEDDED_DEFAULTS.visualNoiseStd}
   */
  visualNoiseStd?: number;
  /**
   * Fraction of the image area covered by a mid-grey square at a random
   * position, 0 to 0.9.
   * @default {EMBEDDED_DEFAULTS.visualOcclusion}
   */
  visualOcclusion?: number;
  /**
   * Standard deviation in pixels of a Gaussian blur, 0 (none) to 5.
   * @default {EMBEDDED_DEFAULTS.visualBlur}
   */
  visualBlur?: number;
  /**
   * Contrast factor, 0.05 to 1: each pixel's distance from the image mean
   * is multiplied by it (1 leaves the image unchanged).
   * @default {EMBEDDED_DEFAULTS.visualContrast}
   */
  visualContrast?: number;
  /**
   * Largest random translation of the digit in training, in pixels of a
   * 32-pixel frame (scaled with `imageSize`), 0 to 8. Evaluation frames are
   * centred. The speech is also placed at a random offset in training.
   * @default {EMBEDDED_DEFAULTS.maxShift}
   */
  maxShift?: number;
  /** Uses only the first n training samples. @default {all (3000)} */
  trainSize?: number;
  /** Uses only the first n validation samples. @default {all (500)} */
  valSize?: number;
  /** Uses only the first n test samples. @default {all (500)} */
  testSize?: number;
}

/**
 * Default strengths of the degradations. They were calibrated on unimodal
 * (audio-only and visual-only) accuracies alone, before any comparison of
 * balancing methods, to make audio the dominant modality with about twice
 * the visual accuracy, as on CREMA-D; data/README.md lists the measurements.
 */
export const EMBEDDED_DEFAULTS = Object.freeze({
  evaluationSeed: 0,
  frames: 1,
  imageSize: 32,
  channels: 1 as 1 | 3,
  audioNoise: "white" as AudioNoise,
  audioSnrDb: -10 as number | null,
  visualNoiseStd: 0.6,
  visualOcclusion: 0.4,
  visualBlur: 0,
  visualContrast: 1,
  maxShift: 2,
});

/** Mean of MNIST pixel values in [0, 1], used to normalise frames. */
export const MNIST_MEAN = 0.1307;
/** Standard deviation of MNIST pixel values in [0, 1]. */
export const MNIST_STD = 0.3081;

const SAMPLE_RATE = 16000;
const WINDOW_SAMPLES = SAMPLE_RATE; // 1 s of audio per sample
const BABBLE_TALKERS = 6;
const SPLITS: readonly Split[] = ["train", "val", "test"];

type ResolvedSettings = typeof EMBEDDED_DEFAULTS & {
  splitSizes: Record<Split, number>;
};

function checkNumber(
  name: string,
  value: unknown,
  min: number,
  max: number,
  integer: boolean,
): void {
  const valid = typeof value === "number" && Number.isFinite(value) &&
    value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!valid) {
    const kind = integer ? "an integer" : "a number";
    throw new RangeError(
      `loadEmbeddedDigits: option ${name} must be ${kind} in [${min}, ${max}], ` +
        `got ${
          typeof value === "string" ? JSON.stringify(value) : String(value)
        }`,
    );
  }
}

const OPTION_NAMES = new Set<string>([
  ...Object.keys(EMBEDDED_DEFAULTS),
  "dataDir",
  "trainSize",
  "valSize",
  "testSize",
]);

function resolveSettings(
  options: EmbeddedDigitsOptions,
  available: Record<Split, number>,
): ResolvedSettings {
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) {
      throw new TypeError(
        `loadEmbeddedDigits: unknown option ${key}; expected one of ` +
          [...OPTION_NAMES].join(", "),
      );
    }
  }
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  );
  const settings = { ...EMBEDDED_DEFAULTS, ...defined };
  checkNumber(
    "evaluationSeed",
    settings.evaluationSeed,
    -(2 ** 53),
    2 ** 53,
    true,
  );
  checkNumber("frames", settings.frames, 1, 3, true);
  checkNumber("imageSize", settings.imageSize, 28, 224, true);
  if (settings.channels !== 1 && settings.channels !== 3) {
    throw new RangeError(
      `loadEmbeddedDigits: option channels must be 1 or 3, got ${settings.channels}`,
    );
  }
  if (settings.audioNoise !== "white" && settings.audioNoise !== "babble") {
    throw new RangeError(
      `loadEmbeddedDigits: option audioNoise must be "white" or "babble", ` +
        `got ${JSON.stringify(settings.audioNoise)}`,
    );
  }
  if (settings.audioSnrDb !== null) {
    checkNumber("audioSnrDb", settings.audioSnrDb, -30, 60, false);
  }
  checkNumber("visualNoiseStd", settings.visualNoiseStd, 0, 2, false);
  checkNumber("visualOcclusion", settings.visualOcclusion, 0, 0.9, false);
  checkNumber("visualBlur", settings.visualBlur, 0, 5, false);
  checkNumber("visualContrast", settings.visualContrast, 0.05, 1, false);
  checkNumber("maxShift", settings.maxShift, 0, 8, true);

  const splitSizes = {} as Record<Split, number>;
  for (const split of SPLITS) {
    const name = `${split}Size` as const;
    const requested = options[name] ?? available[split];
    checkNumber(name, requested, 1, available[split], true);
    splitSizes[split] = requested;
  }
  return {
    evaluationSeed: settings.evaluationSeed,
    frames: settings.frames,
    imageSize: settings.imageSize,
    channels: settings.channels,
    audioNoise: settings.audioNoise,
    audioSnrDb: settings.audioSnrDb,
    visualNoiseStd: settings.visualNoiseStd,
    visualOcclusion: settings.visualOcclusion,
    visualBlur: settings.visualBlur,
    visualContrast: settings.visualContrast,
    maxShift: settings.maxShift,
    splitSizes,
  };
}

class EmbeddedDigits implements AudioVisualDataset {
  readonly name = "embedded-digits";
  readonly classNames: readonly string[];
  readonly audioShape: readonly [number, number];
  readonly visualShape: readonly [number, number, number, number];
  readonly splitSizes: Readonly<Record<Split, number>>;
  readonly contentHash: string;

  #store: EmbeddedStore;
  #settings: ResolvedSettings;
  #dataDir: URL;
  #clipPower: Float64Array;
  #babblePool: Record<Split, number[]>;
  #babbleBySpeaker = new Map<number, number[]>();
  // Evaluation spectrograms are fixed, so they are computed once per split
  // and kept: 257 x 98 floats (about 100 kB) per sample, 50 MB for 500.
  #evalAudio = new Map<Split, Float32Array>();

  constructor(store: EmbeddedStore, settings: ResolvedSettings, dataDir: URL) {
    this.#store = store;
    this.#settings = settings;
    this.#dataDir = dataDir;
    this.classNames = Object.freeze([...store.index.classNames]);
    const frames = Math.floor(
      (WINDOW_SAMPLES - SPECTROGRAM_DEFAULTS.nFft) /
        SPECTROGRAM_DEFAULTS.hopLength,
    ) + 1;
    this.audioShape = Object.freeze(
      [SPECTROGRAM_DEFAULTS.nFft / 2 + 1, frames] as const,
    );
    const { frames: t, imageSize, channels } = settings;
    this.visualShape = Object.freeze(
      [t, imageSize, imageSize, channels] as const,
    );
    this.splitSizes = Object.freeze({ ...settings.splitSizes });
    this.#clipPower = Float64Array.from(store.clips, meanPower);

    // Babble for a split comes from that split's own speakers only.
    const { speakers, clips } = store.index;
    this.#babblePool = { train: [], val: [], test: [] };
    clips.speaker.forEach((speaker, clip) => {
      this.#babblePool[speakers[speaker].split].push(clip);
    });

    const settingsJson = JSON.stringify(this.#hashedSettings());
    this.contentHash = createHash("sha256")
      .update(store.filesHash)
      .update(settingsJson)
      .digest("hex");
  }

  #hashedSettings(): Record<string, unknown> {
    return {
      ...this.#settings,
      sampleRate: SAMPLE_RATE,
      windowSamples: WINDOW_SAMPLES,
      spectrogram: { ...SPECTROGRAM_DEFAULTS },
      babbleTalkers: BABBLE_TALKERS,
      occlusionFill: OCCLUSION_FILL,
      visualMean: MNIST_MEAN,
      visualStd: MNIST_STD,
    };
  }

  describe(): Record<string, unknown> {
    return {
      name: this.name,
      dataDir: decodeURIComponent(this.#dataDir.pathname),
      ...this.#hashedSettings(),
      audioShape: [...this.audioShape],
      visualShape: [...this.visualShape],
      dataFilesHash: this.#store.filesHash,
      contentHash: this.contentHash,
    };
  }

  *batches(split: Split, options: BatchOptions): Iterable<SampleBatch> {
    const { batchSize, seed, epoch } = options;
    const size = this.splitSizes[split];
    const { order, training, dropLast } = planBatches(
      "EmbeddedDigits.batches",
      split,
      size,
      options,
    );
    const evalAudio = training ? undefined : this.#evaluationAudio(split);

    const [bins, frames] = this.audioShape;
    const audioSize = bins * frames;
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
        const random = training
          ? new Random(deriveSeed(seed, "train", split, epoch, index))
          : new Random(
            deriveSeed(this.#settings.evaluationSeed, "eval", split, index),
          );
        batch.labels[b] = this.#label(split, index);
        batch.indices[b] = index;
        if (evalAudio !== undefined) {
          batch.audio.set(
            evalAudio.subarray(index * audioSize, (index + 1) * audioSize),
            b * audioSize,
          );
        } else {
          batch.audio.set(
            this.#audio(split, index, random, true),
            b * audioSize,
          );
        }
        batch.visual.set(
          this.#visual(split, index, random, training),
          b * visualSize,
        );
      }
      yield batch;
    }
  }

  #label(split: Split, index: number): number {
    const clip = this.#store.index.splits[split].clip[index];
    return this.#store.index.clips.label[clip];
  }

  #evaluationAudio(split: Split): Float32Array {
    let cached = this.#evalAudio.get(split);
    if (cached === undefined) {
      const audioSize = this.audioShape[0] * this.audioShape[1];
      cached = new Float32Array(this.splitSizes[split] * audioSize);
      for (let index = 0; index < this.splitSizes[split]; index++) {
        const random = new Random(
          deriveSeed(this.#settings.evaluationSeed, "eval-audio", split, index),
        );
        cached.set(this.#audio(split, index, random, false), index * audioSize);
      }
      this.#evalAudio.set(split, cached);
    }
    return cached;
  }

  // Returns the log spectrogram [F, W] of one sample's 1 s window.
  #audio(
    split: Split,
    index: number,
    random: Random,
    training: boolean,
  ): Float32Array {
    const clipIndex = this.#store.index.splits[split].clip[index];
    const clip = this.#store.clips[clipIndex];
    const window = new Float32Array(WINDOW_SAMPLES);
    const room = WINDOW_SAMPLES - clip.length;
    const offset = training ? random.int(room + 1) : Math.floor(room / 2);
    window.set(clip, offset);

    const { audioSnrDb, audioNoise } = this.#settings;
    if (audioSnrDb !== null) {
      const noise = audioNoise === "white"
        ? fillNormal(random, new Float32Array(WINDOW_SAMPLES))
        : this.#babble(split, clipIndex, random);
      mixAtSnr(window, noise, this.#clipPower[clipIndex], audioSnrDb);
    }
    return logSpectrogram(window).data;
  }

  #babble(split: Split, clipIndex: number, random: Random): Float32Array {
    const pool = this.#babbleSources(split, clipIndex);
    const babble = new Float32Array(WINDOW_SAMPLES);
    for (let talker = 0; talker < BABBLE_TALKERS; talker++) {
      const clip = this.#store.clips[pool[random.int(pool.length)]];
      const offset = random.int(WINDOW_SAMPLES - clip.length + 1);
      for (let i = 0; i < clip.length; i++) babble[offset + i] += clip[i];
    }
    return babble;
  }

  // Returns the clips of `split` that babble may use under `clipIndex`: all
  // those by other speakers.
  #babbleSources(split: Split, clipIndex: number): number[] {
    const speaker = this.#store.index.clips.speaker[clipIndex];
    let sources = this.#babbleBySpeaker.get(speaker);
    if (sources === undefined) {
      const { speaker: speakerOf } = this.#store.index.clips;
      sources = this.#babblePool[split].filter((clip) =>
        speakerOf[clip] !== speaker
      );
      this.#babbleBySpeaker.set(speaker, sources);
    }
    return sources;
  }

  // Returns the normalised frames [T, H, W, C] of one sample.
  #visual(
    split: Split,
    index: number,
    random: Random,
    training: boolean,
  ): Float32Array {
    const { imageSize: size, channels, frames, maxShift } = this.#settings;
    const side = this.#store.index.imageSide;
    const imageIndex = this.#store.index.splits[split].image[index];
    const digit = this.#store.images.subarray(
      imageIndex * side * side,
      (imageIndex + 1) * side * side,
    );
    const out = new Float32Array(frames * size * size * channels);
    const shift = Math.round((maxShift * size) / 32);
    for (let t = 0; t < frames; t++) {
      const dx = training ? random.int(2 * shift + 1) - shift : 0;
      const dy = training ? random.int(2 * shift + 1) - shift : 0;
      const image = placeDigit(digit, side, size, dx, dy);
      gaussianBlur(image, size, this.#settings.visualBlur);
      adjustContrast(image, this.#settings.visualContrast);
      occlude(image, size, this.#settings.visualOcclusion, random);
      addPixelNoise(image, this.#settings.visualNoiseStd, random);

      const base = t * size * size * channels;
      for (let p = 0; p < size * size; p++) {
        const value = (image[p] - MNIST_MEAN) / MNIST_STD;
        for (let c = 0; c < channels; c++) out[base + p * channels + c] = value;
      }
    }
    return out;
  }
}

/**
 * Loads the embedded digits dataset from data/embedded (or `dataDir`).
 *
 * Training batches (`training: true`) are shuffled with the run seed and
 * epoch, and each sample gets fresh noise, occlusion, translation and
 * speech offset per epoch. Evaluation batches come in stored order with
 * noise fixed by `options.evaluationSeed` and the sample index, identical in every
 * epoch and run.
 *
 * Audio is [B, 257, 98, 1] (log spectrogram of 1 s); visual is
 * [B, T, imageSize, imageSize, channels]; labels are digits 0 to 9.
 *
 * @param options Degradation strengths, frame settings and subset sizes.
 * @returns The dataset; loading reads about 13.5 MB and checks SHA-256.
 * @throws {RangeError} If an option is outside its range (the message names
 * the option, the value and the allowed range).
 * @throws {TypeError} If an option name is unknown.
 * @throws {Error} If a data file is missing or corrupt; the message names
 * the file and the command that regenerates it.
 *
 * @example
 * ```ts
 * import { loadEmbeddedDigits } from "./embedded.ts";
 *
 * const dataset = await loadEmbeddedDigits({ trainSize: 32 });
 * for (const batch of dataset.batches("train", {
 *   batchSize: 16,
 *   seed: 1,
 *   epoch: 0,
 *   training: true,
 * })) {
 *   console.assert(batch.audio.length === 16 * 257 * 98);
 * }
 * ```
 */
export async function loadEmbeddedDigits(
  options: EmbeddedDigitsOptions = {},
): Promise<AudioVisualDataset> {
  const dataDir = toDirectoryUrl(
    options.dataDir ?? new URL("../../data/embedded/", import.meta.url),
  );
  const store = await readEmbeddedStore(dataDir);
  const available = {} as Record<Split, number>;
  for (const split of SPLITS) {
    available[split] = store.index.splits[split].image.length;
  }
  const settings = resolveSettings(options, available);
  return new EmbeddedDigits(store, settings, dataDir);
}

function toDirectoryUrl(dir: string | URL): URL {
  const url = dir instanceof URL ? dir : pathToFileURL(resolve(dir));
  return url.href.endsWith("/") ? url : new URL(`${url.href}/`);
}
