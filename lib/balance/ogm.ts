/**
 * OGM and OGM-GE: on-the-fly gradient modulation (Peng et al., "Balanced
 * Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022).
 *
 * Per training step: s^m = sum_i softmax(z_i^m)[c_i] from unimodal logits,
 * rho^v = s^v / s^a and rho^a = 1 / rho^v. If rho^v > 1 the visual
 * encoder is modulated with k^v = 1 - tanh(alpha rho^v) and k^a = 1;
 * otherwise (rho^v = 1 included) the audio encoder is, with
 * k^a = 1 - tanh(alpha rho^a) and k^v = 1. Inside the modulation epochs,
 * every conv-kernel gradient g of the modulated encoder becomes k g, plus
 * N(0, std(g) + 1e-8) noise for OGM-GE.
 *
 * Unimodal logits: fusion-split logits under concat and sum fusion, as the
 * reference code does, and probe heads under FiLM and gated fusion.
 *
 * Limitations:
 * - The reference code adds the GE noise to the conv gradients of both
 *   encoders, the unmodulated one included (k = 1). Here only the
 *   modulated encoder's gradients change.
 * - std(g) is the unbiased (n - 1) standard deviation, as PyTorch's
 *   `Tensor.std()` computes it.
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

/** Options of {@linkcode OgmGe}. */
export interface OgmGeOptions {
  /** Modulation strength alpha, > 0. @default 0.8 */
  alpha?: number;
  /** First modulated epoch, counted from 0. @default 0 */
  modulationStart?: number;
  /**
   * Last modulated epoch (inclusive), in epochs of this run. Default: 50
   * scaled by the run's epoch count / 100, so epochs 0 to 50 of 100.
   */
  modulationEnd?: number;
  /**
   * Add N(0, std(g) + 1e-8) noise to the modulated gradients (OGM-GE);
   * false gives plain OGM.
   * @default true
   */
  gradientNoise?: boolean;
}

/** Modulation coefficients of one step. */
export interface OgmCoefficients {
  /** k^a: factor of the audio encoder's conv gradients. */
  audio: number;
  /** k^v: factor of the visual encoder's conv gradients. */
  visual: number;
  /** rho^v = s^v / s^a. */
  ratioVisual: number;
  /** The modulated (dominant) modality, whose coefficient is below 1. */
  modulated: "audio" | "visual";
}

/** Standard deviation added to the noise's scale, as in the reference. */
export const OGM_NOISE_FLOOR = 1e-8;

/**
 * Computes the OGM coefficients from the true-class scores s^a and s^v.
 * @throws {Error} If a score is not positive and finite.
 */
export function ogmCoefficients(
  scoreAudio: number,
  scoreVisual: number,
  alpha: number,
): OgmCoefficients {
  for (const score of [scoreAudio, scoreVisual]) {
    if (!(score > 0) || !Number.isFinite(score)) {
      throw new Error(
        `ogmCoefficients: scores must be positive and finite, got ` +
          `${scoreAudio} (audio) and ${scoreVisual} (visual).`,
      );
    }
  }
  const ratioVisual = scoreVisual / scoreAudio;
  if (ratioVisual > 1) {
    return {
      audio: 1,
      visual: 1 - Math.tanh(alpha * ratioVisual),
      ratioVisual,
      modulated: "visual",
    };
  }
  return {
    audio: 1 - Math.tanh(alpha / ratioVisual),
    visual: 1,
    ratioVisual,
    modulated: "audio",
  };
}

/**
 * Tests whether `name` is a conv kernel of the `modality` encoder: store names
 * `audio.<...>.kernel` or `visual.<...>.kernel` with a rank-4 value.
 */
export function isEncoderConvKernel(
  name: string,
  value: tf.Tensor,
  modality: "audio" | "visual",
): boolean {
  return name.startsWith(`${modality}.`) && name.endsWith(".kernel") &&
    value.rank === 4;
}

/**
 * Scales the conv-kernel gradients of one encoder by `coefficient` and,
 * when `random` is given, adds N(0, std(g) + 1e-8) noise drawn from it.
 *
 * @param gradients Gradients by store name; not modified or disposed.
 * @returns A new map: new tensors for the changed kernels, the input
 * tensors for every other name.
 */
export function modulateEncoderGradients(
  gradients: Record<string, tf.Tensor>,
  modality: "audio" | "visual",
  coefficient: number,
  random?: Random,
): Record<string, tf.Tensor> {
  const names = Object.keys(gradients).filter((name) =>
    isEncoderConvKernel(name, gradients[name], modality)
  );
  if (names.length === 0) return { ...gradients };

  // One read-back for all standard deviations.
  const deviations = random === undefined
    ? undefined
    : tf.tidy(() =>
      tf.stack(names.map((name) => unbiasedStd(gradients[name]))).dataSync()
    );

  const out = { ...gradients };
  names.forEach((name, i) => {
    const gradient = gradients[name];
    out[name] = tf.tidy(() => {
      const scaled = tf.mul(gradient, coefficient);
      if (deviations === undefined) return scaled;
      const noise = normalSamples(
        random!,
        gradient.size,
        deviations[i] + OGM_NOISE_FLOOR,
      );
      return tf.add(scaled, tf.tensor(noise, gradient.shape));
    });
  });
  return out;
}

function unbiasedStd(x: tf.Tensor): tf.Scalar {
  const n = Math.max(x.size - 1, 1);
  const centred = tf.sub(x, tf.mean(x));
  return tf.sqrt(tf.div(tf.sum(tf.square(centred)), n)) as tf.Scalar;
}

/** Draws n samples of N(0, std^2), both Box-Muller outputs per pair. */
function normalSamples(random: Random, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const radius = std * Math.sqrt(-2 * Math.log(1 - random.next()));
    const angle = 2 * Math.PI * random.next();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < n) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** The OGM and OGM-GE strategy. */
export class OgmGe implements BalanceStrategy {
  /** Method name: "ogm-ge", or "ogm" without gradient noise. */
  readonly name: "ogm" | "ogm-ge";
  /** The step hooks read scores and gradient std with `dataSync()`. */
  readonly synchronousReads = true;
  readonly #alpha: number;
  readonly #modulationStart: number;
  readonly #modulationEnd?: number;
  readonly #gradientNoise: boolean;
  #unimodalKind?: BaselineUnimodalKind;
  #coefficients?: OgmCoefficients;
  #modulating = false;

  /**
   * Creates the strategy.
   * @throws {Error} If alpha is not > 0 or a modulation epoch is negative.
   */
  constructor(options: OgmGeOptions = {}) {
    this.#gradientNoise = options.gradientNoise ?? true;
    this.name = this.#gradientNoise ? "ogm-ge" : "ogm";
    const method = this.#gradientNoise ? "OGM-GE" : "OGM";
    this.#alpha = checkRange(method, "alpha", options.alpha ?? 0.8, {
      min: 0,
      minOpen: true,
      max: Infinity,
      maxOpen: true,
    });
    this.#modulationStart = checkRange(
      method,
      "modulation start",
      options.modulationStart ?? 0,
      { min: 0 },
    );
    if (options.modulationEnd !== undefined) {
      this.#modulationEnd = checkRange(
        method,
        "modulation end",
        options.modulationEnd,
        { min: 0 },
      );
    }
  }

  /**
   * Returns the resolved options. `unimodal` is "auto" until the first
   * step has seen the model, then the kind used.
   */
  config(): Record<string, unknown> {
    return {
      method: this.name,
      alpha: this.#alpha,
      modulationStart: this.#modulationStart,
      modulationEnd: this.#modulationEnd ?? "50 x epochs / 100",
      gradientNoise: this.#gradientNoise,
      unimodal: this.#unimodalKind ??
        "auto: fusion-split for concat and sum, probe otherwise",
    };
  }

  /**
   * Computes this step's coefficients from the unimodal logits. Runs
   * inside the tape but returns the maps unchanged.
   */
  transformMaps(forward: TrainingForward, context: StepContext): FeatureMaps {
    const { kind, scores } = baselineScores(
      context.model,
      forward,
      context.labels,
    );
    this.#unimodalKind = kind;
    this.#coefficients = ogmCoefficients(
      Math.max(scores.audio, CONFIDENCE_FLOOR),
      Math.max(scores.visual, CONFIDENCE_FLOOR),
      this.#alpha,
    );
    const end = this.#modulationEnd ?? scaleEpochs(50, context.epochs);
    this.#modulating = context.epoch >= this.#modulationStart &&
      context.epoch <= end;
    return forward.maps;
  }

  /** Scales (and for OGM-GE, perturbs) the modulated encoder's gradients. */
  transformGradients(
    gradients: Record<string, tf.Tensor>,
    context: StepContext,
  ): Record<string, tf.Tensor> {
    const k = this.#coefficients;
    if (k === undefined || !this.#modulating) return gradients;
    return modulateEncoderGradients(
      gradients,
      k.modulated,
      k[k.modulated],
      this.#gradientNoise ? context.random : undefined,
    );
  }

  /**
   * Coefficients applied in the last step (1 outside the modulation
   * epochs), the score ratio s^v / s^a and whether the step modulated.
   */
  stepStats(): Record<string, number> {
    const k = this.#coefficients;
    if (k === undefined) return {};
    return {
      coeff_audio: this.#modulating ? k.audio : 1,
      coeff_visual: this.#modulating ? k.visual : 1,
      score_ratio_visual: k.ratioVisual,
      modulated: this.#modulating ? 1 : 0,
    };
  }
}
