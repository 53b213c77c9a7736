/**
 * ResNet18 encoders (He et al. 2016) written with tfjs core ops, so that a
 * training step can reach every intermediate feature map and run inside a
 * single `tf.variableGrads` tape.
 *
 * Layout is NHWC. Padding is tfjs "same", which gives the output sizes of
 * torchvision's padding for every input size used here; for stride 2 it
 * pads one more row at the bottom instead of one at each side.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { kaimingConv } from "./_init.ts";
import { batchNormTraining } from "./batch_norm.ts";
import type { ParameterStore } from "./parameters.ts";

/** Stem of the network. */
export type Stem = "imagenet" | "cifar";

/** Options of {@linkcode ResNet18}. */
export interface ResNet18Options {
  /** Input channels: 1 for spectrograms, 3 or 1 for frames. */
  inChannels: number;
  /**
   * Channels of the first stage; stages have 1, 2, 4 and 8 times this.
   * 64 is the paper's ResNet18 (512-d features).
   * @default 64
   */
  width?: number;
  /**
   * "imagenet": 7 x 7 stride-2 conv and 3 x 3 stride-2 max pool, total
   * stride 32 (the paper's). "cifar": 3 x 3 stride-1 conv and no pool, total
   * stride 8, so that a 32 x 32 input still ends in a 4 x 4 map.
   * @default "imagenet"
   */
  stem?: Stem;
  /** Seed of the weight initialisation. @default 0 */
  seed?: number;
}

/** Running-statistics updates collected during a training forward pass. */
export interface BatchNormUpdate {
  /** Running mean buffer. */
  runningMean: tf.Variable;
  /** Running variance buffer. */
  runningVariance: tf.Variable;
  /** Batch mean over N, H, W (kept; disposed by the consumer). */
  mean: tf.Tensor1D;
  /** Biased batch variance over N, H, W (kept; disposed by the consumer). */
  variance: tf.Tensor1D;
  /** Number of values each channel's statistics came from. */
  count: number;
}

/** Batch-norm epsilon, as in PyTorch. */
const BN_EPSILON = 1e-5;

/** A ResNet18 feature extractor: input NHWC to the last conv map. */
export class ResNet18 {
  /** Channels of the last feature map (8 x width). */
  readonly outChannels: number;
  /** Resolved options, for configs. */
  readonly options: Required<ResNet18Options>;
  readonly #store: ParameterStore;
  readonly #prefix: string;

  /**
   * Creates the encoder's variables in `store` under `prefix`.
   * @throws {Error} If width or inChannels is not a positive integer.
   */
  constructor(store: ParameterStore, prefix: string, options: ResNet18Options) {
    const width = options.width ?? 64;
    for (
      const [key, value] of [["width", width], [
        "inChannels",
        options.inChannels,
      ]] as const
    ) {
      if (!Number.isInteger(value) || value < 1) {
        throw new Error(
          `ResNet18: ${key} must be a positive integer, got ${value}.`,
        );
      }
    }
    this.options = {
      inChannels: options.inChannels,
      width,
      stem: options.stem ?? "imagenet",
      seed: options.seed ?? 0,
    };
    this.outChannels = 8 * width;
    this.#store = store;
    this.#prefix = prefix;
    this.#build();
  }

  /**
   * Runs the encoder.
   * @param x Input [N, H, W, inChannels].
   * @param training Batch statistics (true) or running statistics (false).
   * @param updates Receives the batch statistics when training.
   * @returns The last feature map [N, h, w, 8 x width].
   */
  apply(
    x: tf.Tensor4D,
    training: boolean,
    updates?: BatchNormUpdate[],
  ): tf.Tensor4D {
    const { stem } = this.options;
    let h = stem === "imagenet"
      ? this.#convBn(x, "stem", 2, training, updates)
      : this.#convBn(x, "stem", 1, training, updates);
    h = tf.relu(h);
    if (stem === "imagenet") h = tf.maxPool(h, 3, 2, "same");
    for (let stage = 1; stage <= 4; stage++) {
      for (let block = 0; block < 2; block++) {
        const stride = stage > 1 && block === 0 ? 2 : 1;
        h = this.#basicBlock(
          h,
          `layer${stage}.${block}`,
          stride,
          training,
          updates,
        );
      }
    }
    return h;
  }

  #build(): void {
    const { inChannels, width, stem, seed } = this.options;
    const stemKernel = stem === "imagenet" ? 7 : 3;
    this.#addConvBn("stem", stemKernel, inChannels, width, seed);
    let channels = width;
    for (let stage = 1; stage <= 4; stage++) {
      const out = width * 2 ** (stage - 1);
      for (let block = 0; block < 2; block++) {
        const name = `layer${stage}.${block}`;
        const inC = block === 0 ? channels : out;
        this.#addConvBn(`${name}.conv1`, 3, inC, out, seed);
        this.#addConvBn(`${name}.conv2`, 3, out, out, seed);
        const stride = stage > 1 && block === 0 ? 2 : 1;
        if (stride !== 1 || inC !== out) {
          this.#addConvBn(`${name}.downsample`, 1, inC, out, seed);
        }
      }
      channels = out;
    }
  }

  #addConvBn(
    name: string,
    kernel: number,
    inC: number,
    outC: number,
    seed: number,
  ): void {
    const path = `${this.#prefix}.${name}`;
    this.#store.addTrainable(
      `${path}.kernel`,
      kaimingConv([kernel, kernel, inC, outC], seed, `${path}.kernel`),
    );
    this.#store.addTrainable(`${path}.bn.gamma`, tf.ones([outC]));
    this.#store.addTrainable(`${path}.bn.beta`, tf.zeros([outC]));
    this.#store.addBuffer(`${path}.bn.runningMean`, tf.zeros([outC]));
    this.#store.addBuffer(`${path}.bn.runningVariance`, tf.ones([outC]));
  }

  #basicBlock(
    x: tf.Tensor4D,
    name: string,
    stride: number,
    training: boolean,
    updates?: BatchNormUpdate[],
  ): tf.Tensor4D {
    let h = tf.relu(
      this.#convBn(x, `${name}.conv1`, stride, training, updates),
    );
    h = this.#convBn(h, `${name}.conv2`, 1, training, updates);
    const shortcut = this.#store.trainable.has(
        `${this.#prefix}.${name}.downsample.kernel`,
      )
      ? this.#convBn(x, `${name}.downsample`, stride, training, updates)
      : x;
    return tf.relu(tf.add(h, shortcut));
  }

  #convBn(
    x: tf.Tensor4D,
    name: string,
    stride: number,
    training: boolean,
    updates?: BatchNormUpdate[],
  ): tf.Tensor4D {
    const path = `${this.#prefix}.${name}`;
    const trainable = this.#store.trainable;
    const kernel = trainable.get(`${path}.kernel`) as tf.Tensor4D;
    const y = tf.conv2d(x, kernel, stride, "same");
    const gamma = trainable.get(`${path}.bn.gamma`) as tf.Tensor1D;
    const beta = trainable.get(`${path}.bn.beta`) as tf.Tensor1D;
    const runningMean = this.#store.buffers.get(`${path}.bn.runningMean`)!;
    const runningVariance = this.#store.buffers.get(
      `${path}.bn.runningVariance`,
    )!;
    if (!training) {
      return tf.batchNorm4d(
        y,
        runningMean as tf.Tensor1D,
        runningVariance as tf.Tensor1D,
        beta,
        gamma,
        BN_EPSILON,
      );
    }

    // Batch statistics over N, H, W; they also receive gradients.
    const count = y.shape[0] * y.shape[1] * y.shape[2];
    return batchNormTraining(y, gamma, beta, BN_EPSILON, (moments) => {
      if (updates === undefined) {
        tf.dispose([moments.mean, moments.variance]);
        return;
      }
      updates.push({ runningMean, runningVariance, ...moments, count });
    });
  }
}

/**
 * Folds batch statistics into running buffers the way PyTorch does:
 * running = (1 - momentum) running + momentum batch, with the unbiased
 * variance. Disposes the batch tensors.
 */
export function applyBatchNormUpdates(
  updates: BatchNormUpdate[],
  momentum = 0.1,
): void {
  tf.tidy(() => {
    for (const update of updates) {
      const unbiased = update.count > 1 ? update.count / (update.count - 1) : 1;
      update.runningMean.assign(
        update.runningMean.mul(1 - momentum).add(update.mean.mul(momentum)),
      );
      update.runningVariance.assign(
        update.runningVariance.mul(1 - momentum).add(
          update.variance.mul(momentum * unbiased),
        ),
      );
    }
  });
  for (const update of updates) {
    update.mean.dispose();
    update.variance.dispose();
  }
  updates.length = 0;
}
