/**
 * Run configuration: presets, YAML files and command-line values merged in
 * that order (later wins), then validated. A resolved config is plain data
 * saved with every run.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { FUSIONS } from "../models/fusion.ts";
import { METHODS } from "../balance/registry.ts";
import { OPTIMIZERS } from "../train/optimizers.ts";
import { EMBEDDED_DEFAULTS } from "../data/embedded.ts";

/** Preset names. */
export const PRESETS = ["smoke", "default", "paper"] as const;

/** A preset name. */
export type PresetName = typeof PRESETS[number];

/**
 * Dataset names this version can load: the embedded digits, or an on-disk
 * dataset in the CREMA-D, AVE, Kinetics-Sounds or manifest layout.
 */
export const DATASETS = [
  "embedded",
  "cremad",
  "ave",
  "ks",
  "manifest",
] as const;

/** Backend names. */
export const BACKENDS = [
  "auto",
  "tensorflow",
  "wasm",
  "webgpu",
  "cpu",
] as const;

/** Everything that defines one training run. */
export interface RunConfig {
  /** Run folder name; derived from the config when empty. */
  name: string;
  /** Preset the values started from. */
  preset: PresetName;
  /** Seed of data order, noise, initialisation and masks. */
  seed: number;
  /** Requested tfjs backend. */
  backend: typeof BACKENDS[number];
  /** Balancing method. */
  method: typeof METHODS[number];
  /** Data settings. */
  data: {
    /** Dataset name. */
    dataset: typeof DATASETS[number];
    /** Folder or manifest of an on-disk dataset; empty for embedded. */
    dataRoot: string;
    /** Frames per sample T; 0 = the dataset's (3 for AVE and KS, else 1). */
    frames: number;
    /** Frame side in pixels; 0 = the dataset's (embedded 32, disk 224). */
    imageSize: number;
    /** Disk data: clip length in seconds; 0 = 3 for CREMA-D, else 10. */
    audioSeconds: number;
    /** Disk data: leave out samples whose media are missing. */
    skipMissing: boolean;
    /** Disk data: cache folder; "" = .cache/data, "none" = no cache. */
    cacheDir: string;
    /** Training samples used (0 = all). */
    trainSize: number;
    /** Validation samples used (0 = all). */
    valSize: number;
    /** Test samples used (0 = all). */
    testSize: number;
    /** Embedded data: speech-to-noise ratio of the mixed noise, in dB. */
    audioSnrDb: number;
    /** Embedded data: std of Gaussian pixel noise on [0, 1] images. */
    visualNoiseStd: number;
    /** Embedded data: fraction of the image covered by a grey square. */
    visualOcclusion: number;
    /** Embedded data: std of the Gaussian blur, in pixels (0 = none). */
    visualBlur: number;
  };
  /** Model settings. */
  model: {
    /** Fusion head. */
    fusion: typeof FUSIONS[number];
    /** First-stage channels of ResNet18 (64 is the paper's). */
    width: number;
    /** Stem of the audio encoder. */
    audioStem: "imagenet" | "cifar";
    /** Stem of the visual encoder. */
    visualStem: "imagenet" | "cifar";
    /** Unimodal logits for dominance. */
    unimodal: "probe" | "fusion-split";
  };
  /** CAMDrop settings (used when method is camdrop). */
  camdrop: {
    /** Maximum masking ratio r_max in (0, 1). */
    rMax: number;
    /** Warm-up start as a fraction of r_max. */
    warmupStart: number;
    /** Warm-up epochs; -1 means 10 x epochs / 100. */
    warmupEpochs: number;
    /** Class the CAM explains. */
    target: "label" | "predicted";
    /** Mask visual positions per frame. */
    perFrame: boolean;
  };
  /** OGM and OGM-GE settings; epoch values of -1 scale 0..50 of 100. */
  ogm: {
    /** Modulation strength alpha. */
    alpha: number;
    /** First modulated epoch. */
    modulationStart: number;
    /** Last modulated epoch (inclusive); -1 means 50 x epochs / 100. */
    modulationEnd: number;
  };
  /** OPM settings. */
  opm: {
    /** Base drop probability. */
    qBase: number;
    /** Growth of the drop probability with dominance. */
    lambda: number;
    /** Probability that dropping runs in a step. */
    pExe: number;
    /** Epochs without dropping; -1 means 5 x epochs / 100. */
    warmupEpochs: number;
    /** "feature" drops pooled features, "spatial" random positions. */
    mode: "feature" | "spatial";
  };
  /** Gradient-Blending settings. */
  gb: {
    /** Epochs per weight estimate; -1 means 10 x epochs / 100. */
    windowEpochs: number;
    /** Fraction of the training set held out for the estimate. */
    heldOutFraction: number;
    /** Floor of the overfitting term O. */
    gapFloor: number;
  };
  /** PMR settings. */
  pmr: {
    /** Weight of the prototype loss. */
    alpha: number;
    /** Momentum of the prototype update. */
    momentum: number;
    /** Fraction of training batches used for prototypes. */
    prototypeFraction: number;
    /** First modulated epoch. */
    modulationStart: number;
    /** Last modulated epoch; -1 means 70 x epochs / 100. */
    modulationEnd: number;
  };
  /** Optimisation settings. */
  train: {
    /** Epochs. */
    epochs: number;
    /** Batch size. */
    batchSize: number;
    /** Optimiser. */
    optimizer: typeof OPTIMIZERS[number];
    /** Initial learning rate. */
    lr: number;
    /** SGD momentum. */
    momentum: number;
    /** L2 weight decay. */
    weightDecay: number;
    /** Epochs between learning-rate decays; -1 means 70 x epochs / 100. */
    lrDecayEvery: number;
    /** Learning-rate decay factor. */
    lrDecayFactor: number;
    /** Evaluation batch size. */
    evalBatchSize: number;
    /** A NaN or infinite loss: "stop" the run or "skip" the batch. */
    nonFinite: "stop" | "skip";
    /**
     * Samples per micro-batch for gradient accumulation: 0 = whole
     * batches, -1 = pick one that fits the wasm heap.
     */
    microBatch: number;
  };
}

/** A partial config, as a YAML file or the command line gives it. */
export type ConfigOverrides = {
  [K in keyof RunConfig]?: RunConfig[K] extends Record<string, unknown>
    ? Partial<RunConfig[K]>
    : RunConfig[K];
};

const BASE: RunConfig = {
  name: "",
  preset: "default",
  seed: 0,
  backend: "auto",
  method: "camdrop",
  data: {
    dataset: "embedded",
    dataRoot: "",
    frames: 0,
    imageSize: 0,
    audioSeconds: 0,
    skipMissing: false,
    cacheDir: "",
    trainSize: 0,
    valSize: 0,
    testSize: 0,
    audioSnrDb: EMBEDDED_DEFAULTS.audioSnrDb ?? 60,
    visualNoiseStd: EMBEDDED_DEFAULTS.visualNoiseStd,
    visualOcclusion: EMBEDDED_DEFAULTS.visualOcclusion,
    visualBlur: EMBEDDED_DEFAULTS.visualBlur,
  },
  model: {
    fusion: "concat",
    width: 8,
    audioStem: "imagenet",
    visualStem: "cifar",
    unimodal: "probe",
  },
  camdrop: {
    rMax: 0.3,
    warmupStart: 0.25,
    warmupEpochs: -1,
    target: "label",
    perFrame: false,
  },
  ogm: { alpha: 0.8, modulationStart: 0, modulationEnd: -1 },
  opm: {
    qBase: 0.5,
    lambda: 0.5,
    pExe: 0.7,
    warmupEpochs: -1,
    mode: "feature",
  },
  gb: { windowEpochs: -1, heldOutFraction: 0.1, gapFloor: 1e-4 },
  pmr: {
    alpha: 2,
    momentum: 0,
    prototypeFraction: 0.1,
    modulationStart: 0,
    modulationEnd: -1,
  },
  train: {
    epochs: 20,
    batchSize: 16,
    optimizer: "sgd",
    lr: 1e-3,
    momentum: 0.9,
    weightDecay: 1e-4,
    lrDecayEvery: -1,
    lrDecayFactor: 0.1,
    evalBatchSize: 64,
    nonFinite: "stop",
    microBatch: 0,
  },
};

/**
 * Presets. "smoke" is a tiny run for tests (about a minute on 2 cores);
 * "default" is the embedded-data run of `deno task repro`; "paper" uses the
 * paper's model and optimiser settings (full-width ResNet18, ImageNet stems,
 * 100 epochs, batch 16, learning rate 1e-3 decayed at epoch 70).
 */
export const PRESET_OVERRIDES: Record<PresetName, ConfigOverrides> = {
  smoke: {
    data: { trainSize: 192, valSize: 96, testSize: 96, imageSize: 32 },
    model: { width: 4 },
    train: { epochs: 2, batchSize: 16, lr: 0.01 },
  },
  default: {
    data: { trainSize: 2000 },
    model: { width: 4 },
    train: { epochs: 20, batchSize: 16, lr: 0.01 },
  },
  paper: {
    model: { width: 64, audioStem: "imagenet", visualStem: "imagenet" },
    train: { epochs: 100, batchSize: 16, lr: 1e-3, microBatch: -1 },
  },
};

/**
 * Merges preset, file and command-line values and validates the result.
 * @throws {Error} On an unknown key or an invalid value, naming both.
 */
export function resolveConfig(
  preset: string,
  ...layers: ConfigOverrides[]
): RunConfig {
  if (!(PRESETS as readonly string[]).includes(preset)) {
    throw new Error(
      `Unknown preset "${preset}": expected one of ${PRESETS.join(", ")}.`,
    );
  }
  const config = structuredClone(BASE);
  config.preset = preset as PresetName;
  for (const layer of [PRESET_OVERRIDES[preset as PresetName], ...layers]) {
    mergeInto(config as unknown as Record<string, unknown>, layer, "");
  }
  validateConfig(config);
  if (config.name === "") config.name = defaultRunName(config);
  return config;
}

/** Parses a YAML config file's text into overrides. */
export function parseConfigYaml(text: string, source: string): ConfigOverrides {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    const message = error instanceof Error
      ? error.message.split("\n")[0]
      : String(error);
    throw new Error(`Invalid YAML in ${source}: ${message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(
      `Invalid config ${source}: expected a mapping of sections such as ` +
        `"train:" and "model:", got ${
          Array.isArray(parsed) ? "a list" : typeof parsed
        }.`,
    );
  }
  // Check keys now so the error names the file.
  try {
    mergeInto(
      structuredClone(BASE) as unknown as Record<string, unknown>,
      parsed as Record<string, unknown>,
      "",
    );
  } catch (error) {
    throw new Error(`Invalid config ${source}: ${(error as Error).message}`);
  }
  return parsed as ConfigOverrides;
}

/** Derives a run folder name such as `embedded-concat-camdrop-r0.3-s0`. */
export function defaultRunName(config: RunConfig): string {
  const parts: string[] = [
    config.data.dataset,
    config.model.fusion,
    config.method,
  ];
  if (config.method === "camdrop") parts.push(`r${config.camdrop.rMax}`);
  parts.push(`s${config.seed}`);
  return parts.join("-");
}

function mergeInto(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  path: string,
): void {
  for (const [key, value] of Object.entries(source)) {
    const where = path === "" ? key : `${path}.${key}`;
    if (!(key in target)) {
      const known = Object.keys(target).map((k) =>
        path === "" ? k : `${path}.${k}`
      );
      throw new Error(
        `unknown key "${where}"; known keys: ${known.join(", ")}.`,
      );
    }
    const current = target[key];
    if (current !== null && typeof current === "object") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new Error(`"${where}" must be a mapping of keys.`);
      }
      mergeInto(
        current as Record<string, unknown>,
        value as Record<string, unknown>,
        where,
      );
      continue;
    }
    if (value === undefined) continue;
    if (typeof value !== typeof current) {
      throw new Error(
        `"${where}" must be a ${typeof current}, got ${JSON.stringify(value)}.`,
      );
    }
    target[key] = value;
  }
}

function oneOf(where: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) {
    throw new Error(
      `Invalid ${where} "${value}": expected one of ${allowed.join(", ")}.`,
    );
  }
}

function integerAtLeast(where: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(
      `Invalid ${where} ${value}: expected an integer >= ${min}.`,
    );
  }
}

function positive(where: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new Error(`Invalid ${where} ${value}: expected a number > 0.`);
  }
}

/**
 * Checks every value of a config.
 * @throws {Error} Naming the first invalid value and what is expected.
 */
export function validateConfig(config: RunConfig): void {
  oneOf("backend", config.backend, BACKENDS);
  oneOf("method", config.method, METHODS);
  oneOf("dataset", config.data.dataset, DATASETS);
  oneOf("fusion", config.model.fusion, FUSIONS);
  oneOf("audio stem", config.model.audioStem, ["imagenet", "cifar"]);
  oneOf("visual stem", config.model.visualStem, ["imagenet", "cifar"]);
  oneOf("unimodal logits", config.model.unimodal, ["probe", "fusion-split"]);
  oneOf("optimizer", config.train.optimizer, OPTIMIZERS);
  oneOf("CAM target", config.camdrop.target, ["label", "predicted"]);
  oneOf("OPM mode", config.opm.mode, ["feature", "spatial"]);
  oneOf("train.nonFinite", config.train.nonFinite, ["stop", "skip"]);
  if (
    config.model.unimodal === "fusion-split" &&
    !(config.model.fusion === "concat" || config.model.fusion === "sum")
  ) {
    throw new Error(
      `Invalid unimodal logits "fusion-split" with fusion ` +
        `"${config.model.fusion}": they exist for concat and sum only; use ` +
        `"probe".`,
    );
  }
  integerAtLeast("seed", config.seed, 0);
  integerAtLeast("frames", config.data.frames, 0);
  integerAtLeast("image size", config.data.imageSize, 0);
  if (!(config.data.audioSeconds >= 0)) {
    throw new Error(
      `Invalid audio seconds ${config.data.audioSeconds}: expected a ` +
        `number >= 0 (0 = the dataset's length).`,
    );
  }
  if (config.data.dataset !== "embedded" && config.data.dataRoot === "") {
    throw new Error(
      `Missing data root: dataset "${config.data.dataset}" is read from ` +
        `disk; pass --data-root DIR (or data.dataRoot in the config file).`,
    );
  }
  for (const key of ["trainSize", "valSize", "testSize"] as const) {
    integerAtLeast(`data.${key}`, config.data[key], 0);
  }
  integerAtLeast("width", config.model.width, 1);
  integerAtLeast("epochs", config.train.epochs, 1);
  integerAtLeast("batch size", config.train.batchSize, 2);
  integerAtLeast("evaluation batch size", config.train.evalBatchSize, 1);
  integerAtLeast("micro-batch", config.train.microBatch, -1);
  positive("learning rate", config.train.lr);
  if (!(config.camdrop.rMax > 0 && config.camdrop.rMax < 1)) {
    throw new Error(
      `Invalid r_max ${config.camdrop.rMax}: expected a number in (0, 1).`,
    );
  }
  if (!(config.camdrop.warmupStart >= 0 && config.camdrop.warmupStart <= 1)) {
    throw new Error(
      `Invalid warm-up start ${config.camdrop.warmupStart}: expected a ` +
        `number in [0, 1].`,
    );
  }
  if (!(config.train.momentum >= 0 && config.train.momentum < 1)) {
    throw new Error(
      `Invalid momentum ${config.train.momentum}: expected a number in [0, 1).`,
    );
  }
  if (!(config.train.weightDecay >= 0)) {
    throw new Error(
      `Invalid weight decay ${config.train.weightDecay}: expected >= 0.`,
    );
  }
  if (!(config.train.lrDecayFactor > 0 && config.train.lrDecayFactor <= 1)) {
    throw new Error(
      `Invalid learning-rate decay factor ${config.train.lrDecayFactor}: ` +
        `expected a number in (0, 1].`,
    );
  }
  if (/[\/\\]|^\.\.?$/.test(config.name)) {
    throw new Error(
      `Invalid run name "${config.name}": use a plain folder name without ` +
        `slashes.`,
    );
  }
}
