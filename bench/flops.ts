/**
 * Analytic forward FLOPs of {@linkcode AudioVisualModel}: 2 x multiply-adds
 * of every convolution and dense layer, per sample. Batch norm, ReLU,
 * pooling and the loss are left out, as is usual for FLOP counts.
 *
 * @module
 */

import type { AudioVisualModel, Stem } from "../lib/mod.ts";

/** One convolution or dense layer of the forward pass. */
export interface LayerCost {
  /** Variable name of the layer's kernel in the model's store. */
  kernel: string;
  /** Kernel shape [kh, kw, Cin, Cout] or [in, out]. */
  shape: number[];
  /** Output positions per sample (h x w; 1 for dense layers). */
  positions: number;
  /** Forward FLOPs per sample: 2 x positions x kernel size. */
  flops: number;
}

/** Forward FLOPs per sample, split by part of the model. */
export interface ForwardFlops {
  /** Audio encoder. */
  audio: number;
  /** Visual encoder over all T frames. */
  visual: number;
  /** Fusion head and both probe heads. */
  heads: number;
  /** Sum of the parts. */
  total: number;
  /** Every layer counted, in forward order. */
  layers: LayerCost[];
}

/** Output size of a tfjs "same" convolution or pool: ceil(size / stride). */
function sameSize(size: number, stride: number): number {
  return Math.ceil(size / stride);
}

/**
 * Lists the convolutions of one ResNet18 encoder with their output sizes.
 * Names follow the encoder's variables (`<prefix>.layer2.0.conv1.kernel`).
 */
function encoderLayers(
  model: AudioVisualModel,
  prefix: string,
  stem: Stem,
  height: number,
  width: number,
  frames: number,
): LayerCost[] {
  const store = model.store.trainable;
  const layers: LayerCost[] = [];
  const add = (name: string, h: number, w: number) => {
    const kernel = `${prefix}.${name}.kernel`;
    const variable = store.get(kernel);
    if (variable === undefined || variable.shape.length !== 4) {
      throw new Error(
        `forwardFlops: the model has no 4-D kernel "${kernel}"; the layer ` +
          `list no longer matches lib/models/resnet.ts.`,
      );
    }
    const [kh, kw, cin, cout] = variable.shape;
    const positions = frames * h * w;
    layers.push({
      kernel,
      shape: variable.shape,
      positions,
      flops: 2 * positions * kh * kw * cin * cout,
    });
  };

  // Stem: 7 x 7 stride 2 and a stride-2 max pool, or 3 x 3 stride 1.
  let h = stem === "imagenet" ? sameSize(height, 2) : height;
  let w = stem === "imagenet" ? sameSize(width, 2) : width;
  add("stem", h, w);
  if (stem === "imagenet") {
    h = sameSize(h, 2);
    w = sameSize(w, 2);
  }

  // Four stages of two basic blocks; the first block of stages 2-4 has
  // stride 2 and a 1 x 1 downsample convolution on the shortcut.
  for (let stage = 1; stage <= 4; stage++) {
    for (let block = 0; block < 2; block++) {
      const name = `layer${stage}.${block}`;
      const stride = stage > 1 && block === 0 ? 2 : 1;
      const outH = sameSize(h, stride);
      const outW = sameSize(w, stride);
      add(`${name}.conv1`, outH, outW);
      add(`${name}.conv2`, outH, outW);
      if (store.has(`${prefix}.${name}.downsample.kernel`)) {
        add(`${name}.downsample`, outH, outW);
      }
      h = outH;
      w = outW;
    }
  }
  return layers;
}

/** Lists the dense layers of the fusion head and the probe heads. */
function headLayers(model: AudioVisualModel): LayerCost[] {
  const layers: LayerCost[] = [];
  for (const [name, variable] of model.store.trainable) {
    const isHead = name.startsWith("fusion.") || name.startsWith("probe.");
    if (!isHead || !name.endsWith(".kernel")) continue;
    const [inputs, outputs] = variable.shape;
    layers.push({
      kernel: name,
      shape: variable.shape,
      positions: 1,
      flops: 2 * inputs * outputs,
    });
  }
  return layers;
}

/**
 * Counts the forward FLOPs per sample of `model` on spectrograms of
 * `audioShape` [F, W] and frame stacks of `visualShape` [T, H, W, C].
 *
 * @throws {Error} If a counted kernel is missing from the model or the
 *   model has a 4-D kernel the count does not cover.
 */
export function forwardFlops(
  model: AudioVisualModel,
  audioShape: readonly [number, number],
  visualShape: readonly [number, number, number, number],
): ForwardFlops {
  const o = model.options;
  const [f, wa] = audioShape;
  const [t, hv, wv] = visualShape;
  const audio = encoderLayers(model, "audio", o.audioStem, f, wa, 1);
  const visual = encoderLayers(model, "visual", o.visualStem, hv, wv, t);
  const heads = headLayers(model);
  const layers = [...audio, ...visual, ...heads];

  // Every conv kernel of the model must be in the count.
  const counted = new Set(layers.map((layer) => layer.kernel));
  for (const [name, variable] of model.store.trainable) {
    if (variable.shape.length === 4 && !counted.has(name)) {
      throw new Error(
        `forwardFlops: kernel "${name}" is not covered by the FLOP count.`,
      );
    }
  }

  const sum = (list: LayerCost[]) =>
    list.reduce((total, layer) => total + layer.flops, 0);
  return {
    audio: sum(audio),
    visual: sum(visual),
    heads: sum(heads),
    total: sum(layers),
    layers,
  };
}
