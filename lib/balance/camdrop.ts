/**
 * CAMDrop: GradCAM-guided dropping of each modality's most class-relevant
 * feature-map positions, with a ratio that grows with how dominant the
 * modality currently is.
 *
 * Per training step: dominance rho^m from unimodal logits; ratio
 * r^m = sigmoid(log rho^m) * r_max_eff = rho^m / (1 + rho^m) * r_max_eff;
 * GradCAM of the fused logit of each sample's target class on the unmasked
 * maps; the top n = floor(r^m P + 0.5) positive CAM positions are zeroed
 * across all channels. Evaluation never masks.
 *
 * The CAMDrop paper's warm-up reads "initial masking ratio 0.25, increased linearly
 * to r_max within 10 epochs"; taken literally that starts above r_max = 0.1,
 * so here 0.25 is a fraction of r_max: r_max_eff = r_max (s + (1 - s)
 * min(1, epoch / E)).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  type CamTarget,
  camTargets,
  type ChannelWeighting,
  classActivationMaps,
  gradCamWeights,
} from "../cam/gradcam.ts";
import { maskCount, topPositiveMask } from "../cam/mask.ts";
import type { AudioVisualModel, FeatureMaps } from "../models/mod.ts";
import type {
  BalanceStrategy,
  EpochContext,
  StepContext,
  TrainingForward,
} from "./strategy.ts";

/** Options of {@linkcode CamDrop}. */
export interface CamDropOptions {
  /** Maximum masking ratio r_max, in (0, 1). @default 0.3 */
  rMax?: number;
  /** Warm-up start s as a fraction of r_max, in [0, 1]. @default 0.25 */
  warmupStart?: number;
  /**
   * Warm-up length E in epochs. Default: 10 epochs scaled by the run's
   * epoch count / 100, as presets shorter than the CAMDrop paper's 100 epochs do.
   */
  warmupEpochs?: number;
  /** Class score the CAM explains. @default "label" */
  target?: CamTarget;
  /**
   * Select visual positions per frame instead of jointly over all frames.
   * @default false
   */
  perFrame?: boolean;
  /** Channel-weighting rule of the CAM. @default gradCamWeights */
  weighting?: ChannelWeighting;
}

/**
 * Effective maximum ratio after warm-up:
 * r_max (s + (1 - s) min(1, epoch / E)); E = 0 means no warm-up.
 */
export function warmupRMax(
  rMax: number,
  epoch: number,
  start: number,
  warmupEpochs: number,
): number {
  if (warmupEpochs <= 0) return rMax;
  return rMax * (start + (1 - start) * Math.min(1, epoch / warmupEpochs));
}

/** Masking ratio from dominance: rho / (1 + rho) * r_max_eff. */
export function maskRatio(rho: number, rMaxEffective: number): number {
  if (!(rho > 0) || !Number.isFinite(rho)) {
    throw new Error(
      `maskRatio: dominance ratio must be positive and finite, got ${rho}.`,
    );
  }
  return rho / (1 + rho) * rMaxEffective;
}

/** Returns the function from maps to fused logits [B, K] that CAMs explain. */
function fusedScore(model: AudioVisualModel) {
  return ([audio, visual]: tf.Tensor[]): tf.Tensor2D => {
    const pooled = model.pool({
      audio: audio as tf.Tensor4D,
      visual: visual as tf.Tensor5D,
    });
    return model.fusion.apply(pooled.audio, pooled.visual);
  };
}

/**
 * GradCAM of the fused logit on both modalities' maps, for the true label
 * or the predicted class of each sample.
 * @returns Audio CAM [B, h, w] and visual CAM [B, T, h, w]; the caller
 * disposes them.
 */
export function fusedCams(
  model: AudioVisualModel,
  maps: FeatureMaps,
  labels: Int32Array,
  options: Pick<CamDropOptions, "target" | "weighting"> = {},
): [tf.Tensor, tf.Tensor] {
  const score = fusedScore(model);
  const target = options.target ?? "label";
  const targets = target === "label"
    ? labels
    : tf.tidy(() =>
      camTargets(score([maps.audio, maps.visual]), labels, target)
    );
  const [audioCam, visualCam] = classActivationMaps(
    score,
    [maps.audio, maps.visual],
    targets,
    options.weighting ?? gradCamWeights,
  );
  return [audioCam, visualCam];
}

/** Masks of one batch, broadcastable over channels. */
export interface CamDropMasks {
  /** Audio mask [B, h, w, 1]. */
  audio: tf.Tensor4D;
  /** Visual mask [B, T, h, w, 1]. */
  visual: tf.Tensor5D;
  /** Fraction of audio positions zeroed. */
  audioFraction: number;
  /** Fraction of visual positions zeroed. */
  visualFraction: number;
}

/** The values of {@linkcode CamDropMasks} in host memory. */
interface HostMasks {
  audio: Float32Array;
  visual: Float32Array;
  audioShape: [number, number, number, number];
  visualShape: [number, number, number, number, number];
}

/**
 * Computes CAMDrop masks for both modalities from unmasked maps.
 *
 * @param model Supplies the fusion head the CAM's gradient runs through.
 * @param maps Unmasked feature maps.
 * @param labels True labels.
 * @param ratios Masking ratio per modality.
 * @returns Constant masks; no gradient flows through them.
 */
export function camDropMasks(
  model: AudioVisualModel,
  maps: FeatureMaps,
  labels: Int32Array,
  ratios: { audio: number; visual: number },
  options: Pick<CamDropOptions, "target" | "perFrame" | "weighting"> = {},
): CamDropMasks {
  const [audioCam, visualCam] = fusedCams(model, maps, labels, options);
  const audioValues = audioCam.dataSync();
  const visualValues = visualCam.dataSync();
  audioCam.dispose();
  visualCam.dispose();
  return maskTensors(
    hostMasks(maps, audioValues, visualValues, ratios, options.perFrame),
  );
}

/**
 * Computes the masks of {@linkcode camDropMasks} with asynchronous reads
 * only, for backends that cannot read synchronously (webgpu under Deno).
 * @returns The masks in host memory.
 */
async function readCamDropMasks(
  model: AudioVisualModel,
  maps: FeatureMaps,
  labels: Int32Array,
  ratios: { audio: number; visual: number },
  options: Pick<CamDropOptions, "target" | "perFrame" | "weighting">,
): Promise<HostMasks> {
  let targets = labels;
  if ((options.target ?? "label") === "predicted") {
    const predicted = tf.tidy(() =>
      tf.argMax(fusedScore(model)([maps.audio, maps.visual]), 1)
    );
    targets = await predicted.data() as Int32Array;
    predicted.dispose();
  }
  const cams = fusedCams(model, maps, targets, {
    target: "label",
    weighting: options.weighting,
  });
  try {
    const [audioValues, visualValues] = await Promise.all(
      cams.map((cam) => cam.data()),
    );
    return hostMasks(maps, audioValues, visualValues, ratios, options.perFrame);
  } finally {
    tf.dispose(cams);
  }
}

/** Builds the top-n masks from CAM values laid out as the maps' positions. */
function hostMasks(
  maps: FeatureMaps,
  audioCam: ArrayLike<number>,
  visualCam: ArrayLike<number>,
  ratios: { audio: number; visual: number },
  perFrame = false,
): HostMasks {
  // Audio positions P = h * w; visual P = T * h * w, or h * w per frame.
  const [batch, ah, aw] = maps.audio.shape;
  const [, frames, vh, vw] = maps.visual.shape;
  const audioGroup = ah * aw;
  const visualGroup = perFrame ? vh * vw : frames * vh * vw;
  return {
    audio: topPositiveMask(
      audioCam,
      audioGroup,
      maskCount(ratios.audio, audioGroup),
    ),
    visual: topPositiveMask(
      visualCam,
      visualGroup,
      maskCount(ratios.visual, visualGroup),
    ),
    audioShape: [batch, ah, aw, 1],
    visualShape: [batch, frames, vh, vw, 1],
  };
}

function maskTensors(masks: HostMasks): CamDropMasks {
  return {
    audio: tf.tensor4d(masks.audio, masks.audioShape),
    visual: tf.tensor5d(masks.visual, masks.visualShape),
    audioFraction: zeroFraction(masks.audio),
    visualFraction: zeroFraction(masks.visual),
  };
}

function zeroFraction(mask: Float32Array): number {
  let zeros = 0;
  for (const value of mask) if (value === 0) zeros++;
  return zeros / mask.length;
}

/** The CAMDrop strategy. */
export class CamDrop implements BalanceStrategy {
  /** Method name. */
  readonly name = "camdrop";
  readonly #rMax: number;
  readonly #warmupStart: number;
  readonly #warmupEpochs?: number;
  readonly #target: CamTarget;
  readonly #perFrame: boolean;
  readonly #weighting: ChannelWeighting;
  #rMaxEffective: number;
  #resolvedWarmupEpochs = 0;
  #stats: Record<string, number> = {};
  /** Masks read by `prepareStep`, used by the next `transformMaps`. */
  #prepared?: { context: StepContext; masks: HostMasks };

  /**
   * Creates the strategy.
   * @throws {Error} If r_max is outside (0, 1), the warm-up start outside
   * [0, 1], the warm-up length negative or the target unknown.
   */
  constructor(options: CamDropOptions = {}) {
    const rMax = options.rMax ?? 0.3;
    if (!(rMax > 0 && rMax < 1)) {
      throw new Error(
        `CAMDrop: r_max must lie in (0, 1), got ${rMax}.`,
      );
    }
    const start = options.warmupStart ?? 0.25;
    if (!(start >= 0 && start <= 1)) {
      throw new Error(
        `CAMDrop: warm-up start must lie in [0, 1], got ${start}.`,
      );
    }
    if (options.warmupEpochs !== undefined && !(options.warmupEpochs >= 0)) {
      throw new Error(
        `CAMDrop: warm-up epochs must be >= 0, got ${options.warmupEpochs}.`,
      );
    }
    const target = options.target ?? "label";
    if (target !== "label" && target !== "predicted") {
      throw new Error(
        `CAMDrop: target must be "label" or "predicted", got "${target}".`,
      );
    }
    this.#rMax = rMax;
    this.#warmupStart = start;
    this.#warmupEpochs = options.warmupEpochs;
    this.#target = target;
    this.#perFrame = options.perFrame ?? false;
    this.#weighting = options.weighting ?? gradCamWeights;
    this.#rMaxEffective = rMax * start;
  }

  /** Returns the resolved options. */
  config(): Record<string, unknown> {
    return {
      method: this.name,
      rMax: this.#rMax,
      warmupStart: this.#warmupStart,
      warmupEpochs: this.#warmupEpochs ?? "10 x epochs / 100",
      target: this.#target,
      perFrame: this.#perFrame,
      weighting: this.#weighting === gradCamWeights ? "gradcam" : "custom",
    };
  }

  /** Sets this epoch's effective r_max. */
  onEpochStart(context: EpochContext): void {
    this.#resolvedWarmupEpochs = this.#warmupEpochs ??
      10 * context.epochs / 100;
    this.#rMaxEffective = warmupRMax(
      this.#rMax,
      context.epoch,
      this.#warmupStart,
      this.#resolvedWarmupEpochs,
    );
  }

  /** Reads this step's masks ahead of the taped pass. */
  async prepareStep(
    forward: TrainingForward,
    context: StepContext,
  ): Promise<void> {
    this.#prepared = undefined;
    this.#prepared = {
      context,
      masks: await readCamDropMasks(
        context.model,
        forward.maps,
        context.labels,
        this.#ratios(forward),
        this.#maskOptions(),
      ),
    };
  }

  /**
   * Masks both maps with CAM-guided top-n masks: those of `prepareStep`
   * when it ran for this step, else computed here with synchronous reads.
   */
  transformMaps(forward: TrainingForward, context: StepContext): FeatureMaps {
    const ratios = this.#ratios(forward);
    const prepared = this.#prepared;
    this.#prepared = undefined;
    const masks = prepared?.context === context
      ? maskTensors(prepared.masks)
      : camDropMasks(
        context.model,
        forward.maps,
        context.labels,
        ratios,
        this.#maskOptions(),
      );
    this.#stats = {
      r_max_eff: this.#rMaxEffective,
      mask_ratio_audio: ratios.audio,
      mask_ratio_visual: ratios.visual,
      masked_fraction_audio: masks.audioFraction,
      masked_fraction_visual: masks.visualFraction,
    };
    return {
      audio: tf.mul(forward.maps.audio, masks.audio),
      visual: tf.mul(forward.maps.visual, masks.visual),
    };
  }

  #ratios(forward: TrainingForward): { audio: number; visual: number } {
    return {
      audio: maskRatio(forward.dominance.audio, this.#rMaxEffective),
      visual: maskRatio(forward.dominance.visual, this.#rMaxEffective),
    };
  }

  #maskOptions(): Pick<CamDropOptions, "target" | "perFrame" | "weighting"> {
    return {
      target: this.#target,
      perFrame: this.#perFrame,
      weighting: this.#weighting,
    };
  }

  /** Ratios and realised mask fractions of the last step. */
  stepStats(): Record<string, number> {
    return this.#stats;
  }

  /** Warm-up position, for checkpoints. */
  getState(): unknown {
    return { rMaxEffective: this.#rMaxEffective };
  }

  /** Restores the warm-up position. */
  setState(state: unknown): void {
    const value = (state as { rMaxEffective?: number })?.rMaxEffective;
    if (typeof value === "number") this.#rMaxEffective = value;
  }
}
