/**
 * The two-stream audio-visual classifier: a ResNet18 per modality, global
 * average pooling, a fusion head and two unimodal "probe" heads.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../_random.ts";
import {
  addDense,
  dense,
  FusionHead,
  type FusionKind,
  type ModalityLogits,
} from "./fusion.ts";
import { ParameterStore } from "./parameters.ts";
import { type BatchNormUpdate, ResNet18, type Stem } from "./resnet.ts";

/** Source of the unimodal logits. */
export type UnimodalKind = "probe" | "fusion-split";

/** Options of {@linkcode AudioVisualModel}. */
export interface AudioVisualModelOptions {
  /** Number of classes K. */
  numClasses: number;
  /** Fusion head. @default "concat" */
  fusion?: FusionKind;
  /** First-stage channels of both encoders (64 is ResNet18). @default 64 */
  width?: number;
  /** Stem of the audio encoder. @default "imagenet" */
  audioStem?: Stem;
  /** Stem of the visual encoder. @default "imagenet" */
  visualStem?: Stem;
  /** Channels of each frame. @default 3 */
  visualChannels?: number;
  /**
   * Source of the unimodal logits used for dominance and for the unimodal
   * metrics. "fusion-split" exists for concat and sum fusion only.
   * @default "probe"
   */
  unimodal?: UnimodalKind;
  /** Seed of the weight initialisation. @default 0 */
  seed?: number;
}

/** Last feature maps of both encoders. */
export interface FeatureMaps {
  /** Audio map A^a [B, h, w, C]. */
  audio: tf.Tensor4D;
  /** Visual map A^v [B, T, h, w, C]. */
  visual: tf.Tensor5D;
}

/** Pooled features of both encoders, each [B, C]. */
export interface PooledFeatures {
  /** Pooled audio features f^a. */
  audio: tf.Tensor2D;
  /** Pooled visual features f^v. */
  visual: tf.Tensor2D;
}

/** Logits of one evaluation forward pass. */
export interface ModelOutputs {
  /** Fused logits [B, K]. */
  fused: tf.Tensor2D;
  /** Probe-head logits. */
  probe: ModalityLogits;
  /** Fusion-split logits, for concat and sum fusion only. */
  split?: ModalityLogits;
  /** Pooled features. */
  pooled: PooledFeatures;
}

/**
 * Identity whose gradient is zero: the value passes, the gradient stops.
 * Probe heads read features through it so that their loss trains the heads
 * and never the encoders.
 */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  ((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.clone(x),
      gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
    };
  }) as never,
) as (x: tf.Tensor) => tf.Tensor;

/** The audio-visual model. */
export class AudioVisualModel {
  /** All variables, named. */
  readonly store: ParameterStore = new ParameterStore();
  /** Audio encoder; variables under `audio.`. */
  readonly audioEncoder: ResNet18;
  /** Visual encoder, shared over frames; variables under `visual.`. */
  readonly visualEncoder: ResNet18;
  /** Fusion head; variables under `fusion.`. */
  readonly fusion: FusionHead;
  /** Resolved options. */
  readonly options: Required<AudioVisualModelOptions>;

  /**
   * Creates and initialises the model.
   * @throws {Error} If an option is invalid, including fusion-split logits
   * with FiLM or gated fusion.
   */
  constructor(options: AudioVisualModelOptions) {
    if (!Number.isInteger(options.numClasses) || options.numClasses < 2) {
      throw new Error(
        `AudioVisualModel: numClasses must be an integer >= 2, got ` +
          `${options.numClasses}.`,
      );
    }
    this.options = {
      numClasses: options.numClasses,
      fusion: options.fusion ?? "concat",
      width: options.width ?? 64,
      audioStem: options.audioStem ?? "imagenet",
      visualStem: options.visualStem ?? "imagenet",
      visualChannels: options.visualChannels ?? 3,
      unimodal: options.unimodal ?? "probe",
      seed: options.seed ?? 0,
    };
    const o = this.options;
    if (o.unimodal !== "probe" && o.unimodal !== "fusion-split") {
      throw new Error(
        `Unknown unimodal logits "${o.unimodal}": expected "probe" or ` +
          `"fusion-split".`,
      );
    }
    if (
      o.unimodal === "fusion-split" &&
      !(o.fusion === "concat" || o.fusion === "sum")
    ) {
      throw new Error(
        `Fusion-split unimodal logits exist for concat and sum fusion only, ` +
          `not "${o.fusion}": use unimodal "probe".`,
      );
    }
    const seed = deriveSeed(o.seed, "model");
    this.audioEncoder = new ResNet18(this.store, "audio", {
      inChannels: 1,
      width: o.width,
      stem: o.audioStem,
      seed,
    });
    this.visualEncoder = new ResNet18(this.store, "visual", {
      inChannels: o.visualChannels,
      width: o.width,
      stem: o.visualStem,
      seed,
    });
    const dim = this.audioEncoder.outChannels;
    this.fusion = new FusionHead(this.store, o.fusion, dim, o.numClasses, seed);
    addDense(this.store, "probe.audio", dim, o.numClasses, seed);
    addDense(this.store, "probe.visual", dim, o.numClasses, seed);
  }

  /** Feature size per modality (8 x width). */
  get featureDim(): number {
    return this.audioEncoder.outChannels;
  }

  /**
   * Encodes both modalities.
   * @param audio Spectrograms [B, F, W, 1].
   * @param visual Frames [B, T, H, W, C]; frames are folded into the batch.
   */
  encode(
    audio: tf.Tensor4D,
    visual: tf.Tensor5D,
    training: boolean,
    updates?: BatchNormUpdate[],
  ): FeatureMaps {
    const [b, t, h, w, c] = visual.shape;
    const audioMap = this.audioEncoder.apply(audio, training, updates);
    // [B, T, H, W, C] -> [B*T, H, W, C] -> encoder -> [B, T, h', w', C'].
    const folded = tf.reshape(visual, [b * t, h, w, c]) as tf.Tensor4D;
    const map = this.visualEncoder.apply(folded, training, updates);
    const [, mh, mw, mc] = map.shape;
    const visualMap = tf.reshape(map, [b, t, mh, mw, mc]) as tf.Tensor5D;
    return { audio: audioMap, visual: visualMap };
  }

  /** Global average pooling: audio over (h, w), visual over (T, h, w). */
  pool(maps: FeatureMaps): PooledFeatures {
    return {
      audio: tf.mean(maps.audio, [1, 2]) as tf.Tensor2D,
      visual: tf.mean(maps.visual, [1, 2, 3]) as tf.Tensor2D,
    };
  }

  /**
   * Returns probe-head logits. With `detach` (the default) gradients stop
   * at the features, so the probe loss trains only the probe heads.
   */
  probeLogits(pooled: PooledFeatures, detach = true): ModalityLogits {
    const fa = detach
      ? stopGradient(pooled.audio) as tf.Tensor2D
      : pooled.audio;
    const fv = detach
      ? stopGradient(pooled.visual) as tf.Tensor2D
      : pooled.visual;
    return {
      audio: dense(this.store, "probe.audio", fa),
      visual: dense(this.store, "probe.visual", fv),
    };
  }

  /**
   * Returns the unimodal logits of the configured kind: probe heads on
   * detached features, or logits split out of the fusion head.
   */
  unimodalLogits(pooled: PooledFeatures): ModalityLogits {
    return this.options.unimodal === "fusion-split"
      ? this.fusion.splitLogits(pooled.audio, pooled.visual)
      : this.probeLogits(pooled);
  }

  /** Runs the model in evaluation mode (running batch-norm statistics). */
  predict(audio: tf.Tensor4D, visual: tf.Tensor5D): ModelOutputs {
    const maps = this.encode(audio, visual, false);
    const pooled = this.pool(maps);
    return {
      fused: this.fusion.apply(pooled.audio, pooled.visual),
      probe: this.probeLogits(pooled),
      split: this.fusion.hasSplitLogits
        ? this.fusion.splitLogits(pooled.audio, pooled.visual)
        : undefined,
      pooled,
    };
  }

  /** Disposes every variable. */
  dispose(): void {
    this.store.dispose();
  }
}
