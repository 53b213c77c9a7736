/**
 * OPM: on-the-fly prediction modulation (Wei et al., "On-the-fly
 * Modulation for Balanced Multimodal Learning", TPAMI 2024).
 *
 * Per training step: s^m = sum_i softmax(z_i^m)[c_i] from unimodal logits;
 * r^m = tanh(relu(s^m / s^other - 1)); drop probability
 * q^m = clip(q_base (1 + lambda r^m), 0, 1) when r^m > 0, else 0, so only
 * the dominant modality can be dropped. With probability p_exe the step
 * drops: each sample's whole pooled feature of modality m is zeroed with
 * probability q^m, and every kept feature (both modalities) is scaled by
 * 1 / (1 - theta), theta = sum_m d_m q_m / sum_m d_m with d_m the pooled
 * feature size. That scale keeps the expected sum of the concatenated
 * features unchanged, as inverted dropout does.
 *
 * Pooling is linear, so scaling a sample's feature map by 0 or
 * 1 / (1 - theta) is the same as scaling its pooled feature. The strategy
 * does that in `transformMaps`.
 *
 * The "spatial" mode zeroes random positions of the dominant modality's
 * map instead, n = floor(q P + 0.5) of the P positions of every sample, as
 * the CAMDrop paper's Figure 1 draws OPM; survivors get the same scale.
 *
 * Unimodal logits: fusion-split logits under concat and sum fusion and
 * probe heads under FiLM and gated fusion.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Random } from "../_random.ts";
import type { FeatureMaps } from "../models/mod.ts";
import {
  baselineScores,
  type BaselineUnimodalKind,
  checkRange,
  scaleEpochs,
} from "./_baseline.ts";
import { CONFIDENCE_FLOOR } from "./dominance.ts";
import type {
  BalanceStrategy,
  StepContext,
  TrainingForward,
} from "./strategy.ts";

/** Drop mode of OPM: whole features or spatial positions. */
export type OpmMode = "feature" | "spatial";

/** Options of {@linkcode Opm}. */
export interface OpmOptions {
  /** Base drop probability q_base, in [0, 1]. @default 0.5 */
  qBase?: number;
  /** Growth lambda of the drop probability with r^m, >= 0. @default 0.5 */
  lambda?: number;
  /** Probability p_exe that a step drops at all, in [0, 1]. @default 0.7 */
  pExe?: number;
  /**
   * Epochs without dropping at the start of training. Default: 5 scaled by
   * the run's epoch count / 100.
   */
  warmupEpochs?: number;
  /**
   * "feature" zeroes whole pooled features of samples; "spatial" zeroes
   * random map positions at the same ratio.
   * @default "feature"
   */
  mode?: OpmMode;
}

/** Drop probabilities of one step. */
export interface OpmProbabilities {
  /** q^a. */
  audio: number;
  /** q^v. */
  visual: number;
  /** r^a = tanh(relu(s^a / s^v - 1)). */
  ratioAudio: number;
  /** r^v = tanh(relu(s^v / s^a - 1)). */
  ratioVisual: number;
}

/**
 * Computes OPM's drop probabilities from the true-class scores.
 * @throws {Error} If a score is not positive and finite.
 */
export function opmDropProbabilities(
  scoreAudio: number,
  scoreVisual: number,
  qBase: number,
  lambda: number,
): OpmProbabilities {
  for (const score of [scoreAudio, scoreVisual]) {
    if (!(score > 0) || !Number.isFinite(score)) {
      throw new Error(
        `opmDropProbabilities: scores must be positive and finite, got ` +
          `${scoreAudio} (audio) and ${scoreVisual} (visual).`,
      );
    }
  }
  const ratioAudio = Math.tanh(Math.max(scoreAudio / scoreVisual - 1, 0));
  const ratioVisual = Math.tanh(Math.max(scoreVisual / scoreAudio - 1, 0));
  const probability = (r: number) =>
    r > 0 ? Math.min(Math.max(qBase * (1 + lambda * r), 0), 1) : 0;
  return {
    audio: probability(ratioAudio),
    visual: probability(ratioVisual),
    ratioAudio,
    ratioVisual,
  };
}

/**
 * Returns the scale of kept features, 1 / (1 - theta) with
 * theta = sum_m d_m q_m / sum_m d_m.
 * @param dims Pooled feature size d_m per modality.
 * @param probabilities Drop probability q_m per modality, same order.
 */
export function survivorScale(dims: number[], probabilities: number[]): number {
  let dropped = 0;
  let total = 0;
  dims.forEach((d, i) => {
    dropped += d * probabilities[i];
    total += d;
  });
  const theta = dropped / total;
  return theta >= 1 ? 0 : 1 / (1 - theta);
}

/**
 * Draws one keep factor per sample: 0 with probability `probability`,
 * else `scale`.
 */
export function sampleDropFactors(
  random: Random,
  batch: number,
  probability: number,
  scale: number,
): Float32Array {
  const out = new Float32Array(batch);
  for (let i = 0; i < batch; i++) {
    out[i] = random.next() < probability ? 0 : scale;
  }
  return out;
}

/**
 * Builds a random spatial mask: per sample, n = floor(ratio P + 0.5) of
 * the P positions, chosen uniformly without replacement, are 0 and the
 * rest 1.
 *
 * @param random Seeded stream the positions are drawn from.
 * @param batch Number of samples B.
 * @param positions Positions P per sample (h w, or T h w for visual).
 * @param ratio Fraction of positions to zero, in [0, 1].
 * @returns The mask [B * P], sample-major.
 * @throws {Error} If the ratio lies outside [0, 1].
 */
export function randomSpatialMask(
  random: Random,
  batch: number,
  positions: number,
  ratio: number,
): Float32Array {
  checkRange("randomSpatialMask", "ratio", ratio, { min: 0, max: 1 });
  const mask = new Float32Array(batch * positions).fill(1);
  const n = Math.min(positions, Math.floor(ratio * positions + 0.5));
  const order = [...Array(positions).keys()];
  for (let b = 0; b < batch; b++) {
    // Partial Fisher-Yates: the first n entries become a uniform choice.
    for (let i = 0; i < n; i++) {
      const j = i + random.int(positions - i);
      [order[i], order[j]] = [order[j], order[i]];
      mask[b * positions + order[i]] = 0;
    }
  }
  return mask;
}

/** The OPM strategy. */
export class Opm implements BalanceStrategy {
  /** Method name. */
  readonly name = "opm";
  /** `transformMaps` reads the unimodal scores with `dataSync()`. */
  readonly synchronousReads = true;
  readonly #qBase: number;
  readonly #lambda: number;
  readonly #pExe: number;
  readonly #warmupEpochs?: number;
  readonly #mode: OpmMode;
  #unimodalKind?: BaselineUnimodalKind;
  #stats: Record<string, number> = {};

  /**
   * Creates the strategy.
   * @throws {Error} If an option lies outside its range or the mode is
   * unknown.
   */
  constructor(options: OpmOptions = {}) {
    const unit = { min: 0, max: 1 };
    this.#qBase = checkRange("OPM", "q_base", options.qBase ?? 0.5, unit);
    this.#lambda = checkRange("OPM", "lambda", options.lambda ?? 0.5, {
      min: 0,
      max: Infinity,
      maxOpen: true,
    });
    this.#pExe = checkRange("OPM", "p_exe", options.pExe ?? 0.7, unit);
    if (options.warmupEpochs !== undefined) {
      this.#warmupEpochs = checkRange(
        "OPM",
        "warm-up epochs",
        options.warmupEpochs,
        { min: 0 },
      );
    }
    const mode = options.mode ?? "feature";
    if (mode !== "feature" && mode !== "spatial") {
      throw new Error(
        `OPM: mode must be "feature" or "spatial", got "${mode}".`,
      );
    }
    this.#mode = mode;
  }

  /**
   * Returns the resolved options. `unimodal` is "auto" until the first
   * step has seen the model, then the kind used.
   */
  config(): Record<string, unknown> {
    return {
      method: this.name,
      qBase: this.#qBase,
      lambda: this.#lambda,
      pExe: this.#pExe,
      warmupEpochs: this.#warmupEpochs ?? "5 x epochs / 100",
      mode: this.#mode,
      unimodal: this.#unimodalKind ??
        "auto: fusion-split for concat and sum, probe otherwise",
    };
  }

  /** Drops the dominant modality's features of this step, or nothing. */
  transformMaps(forward: TrainingForward, context: StepContext): FeatureMaps {
    const { kind, scores } = baselineScores(
      context.model,
      forward,
      context.labels,
    );
    this.#unimodalKind = kind;
    const q = opmDropProbabilities(
      Math.max(scores.audio, CONFIDENCE_FLOOR),
      Math.max(scores.visual, CONFIDENCE_FLOOR),
      this.#qBase,
      this.#lambda,
    );
    this.#stats = {
      score_ratio_visual: scores.visual / scores.audio,
      drop_prob_audio: q.audio,
      drop_prob_visual: q.visual,
      drop_executed: 0,
      dropped_fraction_audio: 0,
      dropped_fraction_visual: 0,
      survivor_scale: 1,
    };

    // Warm-up, then one execution draw per step.
    const warmup = this.#warmupEpochs ?? scaleEpochs(5, context.epochs);
    if (context.epoch < warmup) return forward.maps;
    if (!(context.random.next() < this.#pExe)) return forward.maps;
    if (q.audio === 0 && q.visual === 0) return forward.maps;

    const dim = context.model.featureDim;
    const scale = survivorScale([dim, dim], [q.audio, q.visual]);
    const maps = this.#mode === "feature"
      ? this.#dropFeatures(forward.maps, q, scale, context.random)
      : this.#dropPositions(forward.maps, q, scale, context.random);
    this.#stats.drop_executed = 1;
    this.#stats.survivor_scale = scale;
    return maps;
  }

  /** Drop probabilities, execution and realised drop fractions. */
  stepStats(): Record<string, number> {
    return this.#stats;
  }

  #dropFeatures(
    maps: FeatureMaps,
    q: OpmProbabilities,
    scale: number,
    random: Random,
  ): FeatureMaps {
    const batch = maps.audio.shape[0];
    const audio = sampleDropFactors(random, batch, q.audio, scale);
    const visual = sampleDropFactors(random, batch, q.visual, scale);
    this.#stats.dropped_fraction_audio = zeroFraction(audio);
    this.#stats.dropped_fraction_visual = zeroFraction(visual);
    return {
      audio: tf.mul(maps.audio, tf.tensor4d(audio, [batch, 1, 1, 1])),
      visual: tf.mul(maps.visual, tf.tensor5d(visual, [batch, 1, 1, 1, 1])),
    };
  }

  #dropPositions(
    maps: FeatureMaps,
    q: OpmProbabilities,
    scale: number,
    random: Random,
  ): FeatureMaps {
    const [batch, ah, aw] = maps.audio.shape;
    const [, frames, vh, vw] = maps.visual.shape;
    const audio = randomSpatialMask(random, batch, ah * aw, q.audio);
    const visual = randomSpatialMask(random, batch, frames * vh * vw, q.visual);
    this.#stats.dropped_fraction_audio = zeroFraction(audio);
    this.#stats.dropped_fraction_visual = zeroFraction(visual);
    const audioMask = tf.mul(tf.tensor4d(audio, [batch, ah, aw, 1]), scale);
    const visualMask = tf.mul(
      tf.tensor5d(visual, [batch, frames, vh, vw, 1]),
      scale,
    );
    return {
      audio: tf.mul(maps.audio, audioMask),
      visual: tf.mul(maps.visual, visualMask),
    };
  }
}

function zeroFraction(values: Float32Array): number {
  let zeros = 0;
  for (const value of values) if (value === 0) zeros++;
  return zeros / values.length;
}
