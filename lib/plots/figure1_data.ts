/**
 * The arrays behind Figure 1 of the CAMDrop paper: for a few samples, the
 * GradCAM of each modality and the positions two masks at the same ratio
 * would zero, CAMDrop's top-CAM mask and OPM's random spatial mask.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Random } from "../_random.ts";
import { camDropMasks, fusedCams } from "../balance/camdrop.ts";
import { randomSpatialMask } from "../balance/opm.ts";
import { type CamTarget, camTargets } from "../cam/gradcam.ts";
import { SPECTROGRAM_DEFAULTS } from "../data/spectrogram.ts";
import type { AudioVisualDataset, SampleBatch } from "../data/types.ts";
import type { AudioVisualModel, FeatureMaps } from "../models/mod.ts";

/** A 2-D array, row-major: `grid[row][column]`. */
export type Grid = number[][];

/** Maps and masks of one modality of one sample. */
export interface ModalityMaps {
  /** The input: log spectrogram [F][W], or the first frame's first channel [H][W]. */
  input: Grid;
  /** GradCAM at feature-map resolution [h][w], scaled to [0, 1] per sample. */
  cam: Grid;
  /** CAMDrop mask [h][w]: 0 where a position is zeroed, 1 elsewhere. */
  camDropMask: Grid;
  /** Random spatial mask (OPM "spatial" mode) [h][w], same ratio. */
  randomMask: Grid;
}

/** One sample of Figure 1. */
export interface Figure1Sample {
  /** Position in the batch. */
  index: number;
  /** True class index. */
  label: number;
  /** True class name. */
  className: string;
  /** Spectrogram maps; time along columns, frequency along rows. */
  audio: ModalityMaps;
  /** First frame's maps; rows run top to bottom. */
  visual: ModalityMaps;
}

/** What {@linkcode figure1Data} returns. */
export interface Figure1Data {
  /** Masking ratio of both masks. */
  ratio: number;
  /** Seconds between spectrogram columns. */
  secondsPerFrame: number;
  /** Hertz between spectrogram rows. */
  hertzPerBin: number;
  /** The samples. */
  samples: Figure1Sample[];
}

/** Options of {@linkcode figure1Data}. */
export interface Figure1DataOptions {
  /** Fraction of positions both masks zero, in [0, 1]. @default 0.2 */
  ratio?: number;
  /** Number of samples from the start of the batch. @default 3 */
  samples?: number;
  /** Seed of the random mask. @default 0 */
  seed?: number;
  /** Class score the CAM explains. @default "label" */
  target?: CamTarget;
  /**
   * Sample rate of the audio in Hz, for the spectrogram axes. The
   * default is that of the embedded digits.
   * @default 16000
   */
  sampleRate?: number;
  /** FFT size of the spectrogram. @default SPECTROGRAM_DEFAULTS.nFft */
  nFft?: number;
  /** Hop between spectrogram columns in samples. @default SPECTROGRAM_DEFAULTS.hopLength */
  hopLength?: number;
}

/**
 * Computes GradCAM maps and both masks for the first samples of `batch`,
 * with the model in evaluation mode (running batch-norm statistics).
 *
 * The CAMDrop mask selects visual positions jointly over all frames, as
 * CAMDrop does by default; the figure shows the first frame's slice.
 *
 * @param model The model whose maps and fusion head are explained.
 * @param dataset Supplies the input shapes and class names.
 * @param batch A batch of `dataset`.
 * @throws {Error} If the ratio lies outside [0, 1] or the batch has fewer
 * samples than requested.
 */
export function figure1Data(
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  batch: SampleBatch,
  options: Figure1DataOptions = {},
): Figure1Data {
  const ratio = options.ratio ?? 0.2;
  const count = options.samples ?? 3;
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(`figure1Data: ratio must lie in [0, 1], got ${ratio}.`);
  }
  if (!Number.isInteger(count) || count < 1 || count > batch.size) {
    throw new Error(
      `figure1Data: samples must be an integer in [1, ${batch.size}] ` +
        `(the batch size), got ${count}.`,
    );
  }
  const [f, w] = dataset.audioShape;
  const [t, h, wv, c] = dataset.visualShape;
  const labels = batch.labels.slice(0, count);

  // Encode in evaluation mode: [B, F, W, 1] and [B, T, H, W, C] inputs.
  const audio = tf.tensor4d(batch.audio.subarray(0, count * f * w), [
    count,
    f,
    w,
    1,
  ]);
  const visual = tf.tensor5d(
    batch.visual.subarray(0, count * t * h * wv * c),
    [count, t, h, wv, c],
  );
  // tidy frees the encoder's intermediate tensors and keeps the two maps.
  const maps: FeatureMaps = tf.tidy(() => ({
    ...model.encode(audio, visual, false),
  }));
  try {
    const target = options.target ?? "label";
    const targets = target === "label" ? labels : tf.tidy(() => {
      const pooled = model.pool(maps);
      return camTargets(
        model.fusion.apply(pooled.audio, pooled.visual),
        labels,
        target,
      );
    });

    // GradCAM: [B, h, w] and [B, T, h', w'].
    const [audioCam, visualCam] = fusedCams(model, maps, targets);
    const camValues = [
      audioCam.dataSync() as Float32Array,
      visualCam.dataSync() as Float32Array,
    ];
    tf.dispose([audioCam, visualCam]);

    // CAMDrop masks from the same maps and targets.
    const masks = camDropMasks(model, maps, targets, {
      audio: ratio,
      visual: ratio,
    });
    const camDropValues = [
      masks.audio.dataSync() as Float32Array,
      masks.visual.dataSync() as Float32Array,
    ];
    tf.dispose([masks.audio, masks.visual]);

    // Random masks: audio over h w, visual over T h' w' positions.
    const [, ah, aw] = maps.audio.shape;
    const [, , vh, vw] = maps.visual.shape;
    const random = new Random(deriveSeed(options.seed ?? 0, "figure1"));
    const randomValues = [
      randomSpatialMask(random, count, ah * aw, ratio),
      randomSpatialMask(random, count, t * vh * vw, ratio),
    ];

    const samples: Figure1Sample[] = [];
    for (let b = 0; b < count; b++) {
      const audioInput = batch.audio.subarray(b * f * w, (b + 1) * f * w);
      // First frame's first channel of [T, H, W, C].
      const frameStart = b * t * h * wv * c;
      const frame = new Float32Array(h * wv);
      for (let i = 0; i < h * wv; i++) {
        frame[i] = batch.visual[frameStart + i * c];
      }
      const audioSize = ah * aw;
      const visualSize = t * vh * vw;
      const audioSlice = (values: Float32Array) =>
        values.subarray(b * audioSize, b * audioSize + ah * aw);
      const visualSlice = (values: Float32Array) =>
        values.subarray(b * visualSize, b * visualSize + vh * vw);
      samples.push({
        index: b,
        label: labels[b],
        className: dataset.classNames[labels[b]],
        audio: {
          input: toGrid(audioInput, f, w),
          cam: toGrid(scaleToUnit(audioSlice(camValues[0])), ah, aw),
          camDropMask: toGrid(audioSlice(camDropValues[0]), ah, aw),
          randomMask: toGrid(audioSlice(randomValues[0]), ah, aw),
        },
        visual: {
          input: toGrid(frame, h, wv),
          cam: toGrid(scaleToUnit(visualSlice(camValues[1])), vh, vw),
          camDropMask: toGrid(visualSlice(camDropValues[1]), vh, vw),
          randomMask: toGrid(visualSlice(randomValues[1]), vh, vw),
        },
      });
    }
    const sampleRate = options.sampleRate ?? 16000;
    return {
      ratio,
      secondsPerFrame: (options.hopLength ?? SPECTROGRAM_DEFAULTS.hopLength) /
        sampleRate,
      hertzPerBin: sampleRate / (options.nFft ?? SPECTROGRAM_DEFAULTS.nFft),
      samples,
    };
  } finally {
    tf.dispose([audio, visual, maps.audio, maps.visual]);
  }
}

/** Divides by the maximum, so every sample's CAM peaks at 1 (all-zero stays 0). */
function scaleToUnit(values: Float32Array): Float32Array {
  let max = 0;
  for (const value of values) max = Math.max(max, value);
  return max > 0 ? values.map((value) => value / max) : values.slice();
}

function toGrid(
  values: ArrayLike<number>,
  rows: number,
  columns: number,
): Grid {
  return Array.from(
    { length: rows },
    (_, r) =>
      Array.from({ length: columns }, (_, col) => values[r * columns + col]),
  );
}

/**
 * Returns the share of a modality's GradCAM mass (sum of CAM values) at
 * the positions each mask zeroes: CAMDrop removes the largest share a mask
 * of its size can, a random mask about its ratio on average. 0 when the
 * CAM is all zero.
 */
export function maskedCamShare(
  maps: ModalityMaps,
): { camDrop: number; random: number } {
  let total = 0;
  let camDrop = 0;
  let random = 0;
  maps.cam.forEach((line, r) =>
    line.forEach((value, c) => {
      total += value;
      if (maps.camDropMask[r][c] === 0) camDrop += value;
      if (maps.randomMask[r][c] === 0) random += value;
    })
  );
  return total > 0
    ? { camDrop: camDrop / total, random: random / total }
    : { camDrop: 0, random: 0 };
}
