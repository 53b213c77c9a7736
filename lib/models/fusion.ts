/**
 * Fusion heads that turn pooled audio and visual features into class
 * logits: concat, sum, FiLM (audio conditions visual) and gated.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { xavierDense } from "./_init.ts";
import type { ParameterStore } from "./parameters.ts";

/**
 * Names of the fusion heads. "audio-only" and "visual-only" classify from
 * one modality's features alone: the unimodal baselines.
 */
export const FUSIONS = [
  "concat",
  "sum",
  "film",
  "gated",
  "audio-only",
  "visual-only",
] as const;

/** A fusion head name. */
export type FusionKind = typeof FUSIONS[number];

/** Unimodal logits of both modalities, each [B, K]. */
export interface ModalityLogits {
  /** Audio logits. */
  audio: tf.Tensor2D;
  /** Visual logits. */
  visual: tf.Tensor2D;
}

/** Adds a dense layer's kernel (Xavier-normal) and zero bias to `store`. */
export function addDense(
  store: ParameterStore,
  name: string,
  inFeatures: number,
  outFeatures: number,
  seed: number,
): void {
  store.addTrainable(
    `${name}.kernel`,
    xavierDense([inFeatures, outFeatures], seed, `${name}.kernel`),
  );
  store.addTrainable(`${name}.bias`, tf.zeros([outFeatures]));
}

/** Applies the dense layer `name` of `store` to x [B, in]. */
export function dense(
  store: ParameterStore,
  name: string,
  x: tf.Tensor2D,
): tf.Tensor2D {
  const kernel = store.trainable.get(`${name}.kernel`) as tf.Tensor2D;
  const bias = store.trainable.get(`${name}.bias`) as tf.Tensor1D;
  return tf.add(tf.matMul(x, kernel), bias);
}

/**
 * A fusion head. Parameters live under `fusion.` in the store.
 */
export class FusionHead {
  /** Fusion kind of this head. */
  readonly kind: FusionKind;
  readonly #store: ParameterStore;
  readonly #dim: number;

  /**
   * Creates the head for features of size `dim` per modality and
   * `numClasses` classes.
   * @throws {Error} If `kind` is not a known fusion.
   */
  constructor(
    store: ParameterStore,
    kind: FusionKind,
    dim: number,
    numClasses: number,
    seed: number,
  ) {
    if (!(FUSIONS as readonly string[]).includes(kind)) {
      throw new Error(
        `Unknown fusion "${kind}": expected one of ${FUSIONS.join(", ")}.`,
      );
    }
    this.kind = kind;
    this.#store = store;
    this.#dim = dim;
    switch (kind) {
      case "concat":
        addDense(store, "fusion.fc", 2 * dim, numClasses, seed);
        break;
      case "sum":
        addDense(store, "fusion.audio", dim, numClasses, seed);
        addDense(store, "fusion.visual", dim, numClasses, seed);
        break;
      case "film":
        addDense(store, "fusion.film", dim, 2 * dim, seed);
        addDense(store, "fusion.fc", dim, numClasses, seed);
        break;
      case "gated":
        addDense(store, "fusion.gate", dim, dim, seed);
        addDense(store, "fusion.visual", dim, dim, seed);
        addDense(store, "fusion.fc", dim, numClasses, seed);
        break;
      case "audio-only":
      case "visual-only":
        addDense(store, "fusion.fc", dim, numClasses, seed);
        break;
    }
  }

  /**
   * Returns fused logits [B, K] from pooled features fa, fv [B, dim].
   */
  apply(fa: tf.Tensor2D, fv: tf.Tensor2D): tf.Tensor2D {
    const store = this.#store;
    switch (this.kind) {
      case "concat":
        return dense(store, "fusion.fc", tf.concat([fa, fv], 1));
      case "sum":
        return tf.add(
          dense(store, "fusion.audio", fa),
          dense(store, "fusion.visual", fv),
        );
      case "film": {
        // gamma is the first half of the FiLM output, beta the second.
        const film = dense(store, "fusion.film", fa);
        const gamma = tf.slice(film, [0, 0], [-1, this.#dim]);
        const beta = tf.slice(film, [0, this.#dim], [-1, this.#dim]);
        return dense(store, "fusion.fc", tf.add(tf.mul(gamma, fv), beta));
      }
      case "gated": {
        const gate = tf.sigmoid(dense(store, "fusion.gate", fa));
        const visual = dense(store, "fusion.visual", fv);
        return dense(store, "fusion.fc", tf.mul(gate, visual));
      }
      case "audio-only":
        return dense(store, "fusion.fc", fa);
      case "visual-only":
        return dense(store, "fusion.fc", fv);
    }
  }

  /** Whether fusion-split unimodal logits exist for this head. */
  get hasSplitLogits(): boolean {
    return this.kind === "concat" || this.kind === "sum";
  }

  /**
   * Returns unimodal logits carved out of the head, as OGM-GE's reference
   * code does: for concat, each modality's half of the kernel times its
   * features plus half the bias; for sum, each branch's own dense layer.
   * @throws {Error} For FiLM and gated fusion, which have no such split.
   */
  splitLogits(fa: tf.Tensor2D, fv: tf.Tensor2D): ModalityLogits {
    const store = this.#store;
    if (this.kind === "sum") {
      return {
        audio: dense(store, "fusion.audio", fa),
        visual: dense(store, "fusion.visual", fv),
      };
    }
    if (this.kind !== "concat") {
      throw new Error(
        `Fusion-split unimodal logits exist for concat and sum fusion ` +
          `only, not "${this.kind}": use unimodal "probe" heads instead.`,
      );
    }
    const kernel = store.trainable.get("fusion.fc.kernel") as tf.Tensor2D;
    const halfBias = tf.mul(store.trainable.get("fusion.fc.bias")!, 0.5);
    const audioKernel = tf.slice(kernel, [0, 0], [this.#dim, -1]);
    const visualKernel = tf.slice(kernel, [this.#dim, 0], [this.#dim, -1]);
    return {
      audio: tf.add(tf.matMul(fa, audioKernel), halfBias),
      visual: tf.add(tf.matMul(fv, visualKernel), halfBias),
    };
  }
}
