/**
 * One training run written to its own folder:
 *
 * - `config.json`: resolved config, environment (versions, backend), data
 *   hash and description, strategy options, parameter count;
 * - `metrics.csv`: one row per epoch (rewritten atomically each epoch);
 * - `best.ckpt`: weights of the best epoch on validation accuracy;
 * - `evaluation.json`: macro-F1, per-class accuracy, confusion matrix,
 *   linear probes and missing or noisy modality accuracy of `best.ckpt`
 *   (see {@linkcode evaluateModel});
 * - `status.json`: "running", "failed" (with the error) or "complete",
 *   written last, so a folder never looks complete when it is not.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { createStrategy, type MethodOptions } from "../balance/registry.ts";
import { loadDiskDataset } from "../data/disk.ts";
import { loadEmbeddedDigits } from "../data/embedded.ts";
import type { AudioVisualDataset } from "../data/types.ts";
import { metricsCsv, type MetricsRow } from "../metrics/frame.ts";
import { AudioVisualModel } from "../models/model.ts";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  writeFileAtomic,
} from "../train/files.ts";
import {
  type TrainCallbacks,
  Trainer,
  type TrainerState,
} from "../train/trainer.ts";
import type { RunConfig } from "./config.ts";
import { parseMetricsCsv } from "../metrics/frame.ts";
import {
  evaluateModel,
  type EvaluationOptions,
  type ModelEvaluation,
} from "./evaluation.ts";

/** Version of this toolkit, recorded in every run. */
export const TOOLKIT_VERSION = "0.1.0";

/** Options of {@linkcode runTraining}. */
export interface RunOptions extends TrainCallbacks {
  /** Parent folder; the run is written to `<outDir>/<config.name>`. */
  outDir: string;
  /** Facts about the environment to record, such as the backend info. */
  environment?: Record<string, unknown>;
  /**
   * Return a finished run found in the folder instead of training again.
   * @default true
   */
  reuse?: boolean;
  /**
   * Options of the evaluation of the best checkpoint after training; its
   * seed and batch size come from the config.
   */
  evaluation?: Omit<EvaluationOptions, "seed" | "batchSize">;
  /** Called after each epoch with its metrics. */
  onEpoch?: (row: MetricsRow, config: RunConfig) => void;
  /** Called once the dataset and model are built. */
  onStart?: (info: {
    dir: string;
    parameters: number;
    steps: number;
    resumedAt?: number;
  }) => void;
}

/** Summary of a finished run. */
export interface RunResult {
  /** Run folder. */
  dir: string;
  /** Resolved config. */
  config: RunConfig;
  /** Metrics per epoch. */
  metrics: MetricsRow[];
  /** The best epoch on validation accuracy and its metrics. */
  best: MetricsRow;
  /** Whether a finished run was found and reused. */
  reused: boolean;
  /**
   * Contents of `evaluation.json`; undefined for a reused run that
   * finished before this file existed.
   */
  evaluation?: RunEvaluation;
}

/** Contents of a run's `evaluation.json`. */
export interface RunEvaluation extends ModelEvaluation {
  /** Epoch of the evaluated best checkpoint, from 0 as in metrics.csv. */
  epoch: number;
}

/**
 * Opens the dataset a config names.
 * @throws {Error} If the data files are missing or invalid.
 */
export async function openDataset(
  config: RunConfig,
): Promise<AudioVisualDataset> {
  const d = config.data;
  if (d.dataset !== "embedded") {
    return await loadDiskDataset(d.dataset, d.dataRoot, {
      audioSeconds: d.audioSeconds > 0 ? d.audioSeconds : undefined,
      frames: d.frames > 0 ? d.frames : undefined,
      imageSize: d.imageSize > 0 ? d.imageSize : undefined,
      skipMissing: d.skipMissing,
      cacheDir: d.cacheDir === ""
        ? undefined
        : d.cacheDir === "none"
        ? null
        : d.cacheDir,
      trainSize: d.trainSize > 0 ? d.trainSize : undefined,
      valSize: d.valSize > 0 ? d.valSize : undefined,
      testSize: d.testSize > 0 ? d.testSize : undefined,
    });
  }
  return await loadEmbeddedDigits({
    frames: d.frames > 0 ? d.frames : undefined,
    imageSize: d.imageSize > 0 ? d.imageSize : undefined,
    trainSize: d.trainSize > 0 ? d.trainSize : undefined,
    valSize: d.valSize > 0 ? d.valSize : undefined,
    testSize: d.testSize > 0 ? d.testSize : undefined,
    audioSnrDb: d.audioSnrDb,
    visualNoiseStd: d.visualNoiseStd,
    visualOcclusion: d.visualOcclusion,
    visualBlur: d.visualBlur,
  });
}

/** Builds the model a config describes for `dataset`. */
export function buildModel(
  config: RunConfig,
  dataset: AudioVisualDataset,
): AudioVisualModel {
  return new AudioVisualModel({
    numClasses: dataset.classNames.length,
    fusion: config.model.fusion,
    width: config.model.width,
    audioStem: config.model.audioStem,
    visualStem: config.model.visualStem,
    visualChannels: dataset.visualShape[3],
    unimodal: config.model.unimodal,
    seed: config.seed,
  });
}

/** -1 in a config means "the default scaled by epochs / 100". */
function scaled(value: number): number | undefined {
  return value >= 0 ? value : undefined;
}

/** Strategy options of every method from a config. */
export function strategyOptions(config: RunConfig): MethodOptions {
  const { camdrop, ogm, opm, gb, pmr } = config;
  return {
    camdrop: {
      rMax: camdrop.rMax,
      warmupStart: camdrop.warmupStart,
      warmupEpochs: scaled(camdrop.warmupEpochs),
      target: camdrop.target,
      perFrame: camdrop.perFrame,
    },
    ogm: {
      alpha: ogm.alpha,
      modulationStart: ogm.modulationStart,
      modulationEnd: scaled(ogm.modulationEnd),
    },
    opm: {
      qBase: opm.qBase,
      lambda: opm.lambda,
      pExe: opm.pExe,
      warmupEpochs: scaled(opm.warmupEpochs),
      mode: opm.mode,
    },
    gb: {
      windowEpochs: scaled(gb.windowEpochs),
      heldOutFraction: gb.heldOutFraction,
      gapFloor: gb.gapFloor,
      evalBatchSize: config.train.evalBatchSize,
    },
    pmr: {
      alpha: pmr.alpha,
      momentum: pmr.momentum,
      prototypeFraction: pmr.prototypeFraction,
      modulationStart: pmr.modulationStart,
      modulationEnd: scaled(pmr.modulationEnd),
    },
  };
}

/** Picks the epoch with the highest validation accuracy (first on ties). */
export function bestEpoch(metrics: MetricsRow[]): MetricsRow {
  let best = metrics[0];
  for (const row of metrics) {
    if ((row.val_acc as number) > (best.val_acc as number)) best = row;
  }
  return best;
}

/**
 * Trains one run and writes its folder.
 * @throws {Error} On invalid data, a failed write or a non-finite loss; the
 * folder then contains `status.json` with status "failed".
 */
export async function runTraining(
  config: RunConfig,
  options: RunOptions,
): Promise<RunResult> {
  const dir = join(options.outDir, config.name);
  if (options.reuse ?? true) {
    const finished = await readFinishedRun(dir, config);
    if (finished) return finished;
  }
  await Deno.mkdir(dir, { recursive: true });
  const resumable = await readResumePoint(dir, config);
  await writeFileAtomic(
    join(dir, "status.json"),
    JSON.stringify({ status: "running" }) + "\n",
  );
  let dataset: AudioVisualDataset | undefined;
  let model: AudioVisualModel | undefined;
  let trainer: Trainer | undefined;
  try {
    dataset = await openDataset(config);
    model = buildModel(config, dataset);
    const strategy = createStrategy(config.method, strategyOptions(config));
    const t = config.train;
    trainer = new Trainer(model, strategy, dataset, {
      epochs: t.epochs,
      batchSize: t.batchSize,
      optimizer: t.optimizer,
      lr: t.lr,
      momentum: t.momentum,
      weightDecay: t.weightDecay,
      lrDecayEvery: t.lrDecayEvery >= 0 ? t.lrDecayEvery : undefined,
      lrDecayFactor: t.lrDecayFactor,
      seed: config.seed,
      evalBatchSize: t.evalBatchSize,
      nonFinite: t.nonFinite,
      microBatch: t.microBatch < 0 ? "auto" : t.microBatch,
    });
    const record = {
      config,
      environment: {
        toolkit: TOOLKIT_VERSION,
        deno: Deno.version.deno,
        v8: Deno.version.v8,
        tfjs: tf.version.tfjs,
        backend: tf.getBackend(),
        platform: `${Deno.build.os}-${Deno.build.arch}`,
        ...options.environment,
      },
      data: {
        hash: dataset.contentHash,
        splitSizes: dataset.splitSizes,
        audioShape: dataset.audioShape,
        visualShape: dataset.visualShape,
        settings: dataset.describe(),
      },
      strategy: strategy.config(),
      trainer: trainer.options,
      parameters: model.store.countTrainable(),
    };
    let bestAccuracy = -Infinity;
    if (resumable) {
      // Continue after the last complete epoch; config.json stays as the
      // first start wrote it.
      const { tensors, meta } = resumable;
      model.store.restore(prefixed(tensors, "model/"));
      trainer.optimizer.restore(prefixed(tensors, "optimizer/"));
      trainer.setState(meta.trainer as TrainerState);
      bestAccuracy = meta.bestAccuracy as number;
    } else {
      await writeFileAtomic(
        join(dir, "config.json"),
        JSON.stringify(record, null, 2) + "\n",
      );
    }
    options.onStart?.({
      dir,
      parameters: record.parameters,
      steps: Math.floor(dataset.splitSizes.train / t.batchSize),
      resumedAt: resumable ? trainer.epoch : undefined,
    });

    while (trainer.epoch < t.epochs) {
      const epoch = trainer.epoch;
      const row = await trainer.trainEpoch(options);

      // Best checkpoint, then the resume point, then the metrics table: a
      // crash between two writes leaves files that resume consistently.
      if ((row.val_acc as number) > bestAccuracy) {
        bestAccuracy = row.val_acc as number;
        const bytes = encodeCheckpoint(await model.store.snapshot(), {
          epoch,
          val_acc: row.val_acc,
          test_acc: row.test_acc,
        });
        await writeFileAtomic(join(dir, "best.ckpt"), bytes);
      }
      const resumeTensors = {
        ...prefixed(await model.store.snapshot(), "model/", true),
        ...prefixed(await trainer.optimizer.snapshot(), "optimizer/", true),
      };
      await writeFileAtomic(
        join(dir, "last.ckpt"),
        encodeCheckpoint(resumeTensors, {
          trainer: trainer.getState(),
          bestAccuracy,
        }),
      );
      await writeFileAtomic(
        join(dir, "metrics.csv"),
        metricsCsv(trainer.history),
      );
      options.onEpoch?.(row, config);
    }

    // Evaluate the best checkpoint before the status turns complete, so a
    // complete run always has evaluation.json.
    const evaluation = await writeEvaluation(
      dir,
      model,
      dataset,
      config,
      options.evaluation,
    );
    const metrics = trainer.history;
    const best = bestEpoch(metrics);
    await writeFileAtomic(
      join(dir, "status.json"),
      JSON.stringify({ status: "complete", best }, null, 2) + "\n",
    );
    return { dir, config, metrics, best, reused: false, evaluation };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // NOTE: best.ckpt and last.ckpt of the last complete epoch stay, so a
    // failed run can be resumed once its cause is fixed.
    await writeFileAtomic(
      join(dir, "status.json"),
      JSON.stringify({ status: "failed", error: message }, null, 2) + "\n",
    ).catch(() => {});
    throw error;
  } finally {
    trainer?.dispose();
    model?.dispose();
  }
}

/**
 * Loads `<dir>/best.ckpt` into `model`, evaluates it with
 * {@linkcode evaluateModel} and writes `<dir>/evaluation.json` atomically.
 * The model keeps the best weights afterwards.
 */
async function writeEvaluation(
  dir: string,
  model: AudioVisualModel,
  dataset: AudioVisualDataset,
  config: RunConfig,
  options: RunOptions["evaluation"] = {},
): Promise<RunEvaluation> {
  const path = join(dir, "best.ckpt");
  const { tensors, meta } = decodeCheckpoint(await Deno.readFile(path), path);
  model.store.restore(tensors);
  const evaluation: RunEvaluation = {
    epoch: meta.epoch as number,
    ...await evaluateModel(model, dataset, {
      ...options,
      seed: config.seed,
      batchSize: config.train.evalBatchSize,
    }),
  };
  await writeFileAtomic(
    join(dir, "evaluation.json"),
    compactNumberArrays(JSON.stringify(evaluation, null, 2)) + "\n",
  );
  return evaluation;
}

/** Puts each array of numbers (or nulls) of indented JSON on one line. */
function compactNumberArrays(json: string): string {
  const item = String.raw`(?:-?[\d.eE+-]+|null)`;
  const array = new RegExp(
    String.raw`\[\n\s*(${item}(?:,\n\s*${item})*)\n\s*\]`,
    "g",
  );
  return json.replace(
    array,
    (_, items: string) => `[${items.split(/,\n\s*/).join(", ")}]`,
  );
}

/**
 * Writes `evaluation.json` for a finished run folder that lacks it (runs
 * finished before the file existed), from its config and best checkpoint.
 * Needs a tfjs backend set up.
 * @throws {Error} If the folder has no config or checkpoint, or the data
 * cannot be opened.
 */
export async function evaluateRunFolder(
  dir: string,
  options: RunOptions["evaluation"] = {},
): Promise<RunEvaluation> {
  const configPath = join(dir, "config.json");
  let config: RunConfig;
  try {
    config = JSON.parse(await Deno.readTextFile(configPath)).config;
  } catch (error) {
    throw new Error(
      `Cannot read ${configPath}: ${(error as Error).message}. Pass a run ` +
        `folder written by "deno task repro".`,
    );
  }
  const dataset = await openDataset(config);
  const model = buildModel(config, dataset);
  try {
    return await writeEvaluation(dir, model, dataset, config, options);
  } finally {
    model.dispose();
  }
}

/** Reads `<dir>/evaluation.json`, or returns undefined when it is absent. */
async function readEvaluation(dir: string): Promise<RunEvaluation | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "evaluation.json"));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return JSON.parse(text);
}

/** Adds or strips a name prefix of every key. */
function prefixed<T>(
  tensors: Record<string, T>,
  prefix: string,
  add = false,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, value] of Object.entries(tensors)) {
    if (add) out[prefix + name] = value;
    else if (name.startsWith(prefix)) out[name.slice(prefix.length)] = value;
  }
  return out;
}

/**
 * Reads the resume point of an unfinished run folder: `last.ckpt`, written
 * after every complete epoch.
 * @returns Undefined when the folder has no resume point.
 * @throws {Error} If the folder contains a run of a different config.
 */
async function readResumePoint(dir: string, config: RunConfig) {
  const path = join(dir, "last.ckpt");
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return undefined;
  }
  const saved = JSON.parse(
    await Deno.readTextFile(join(dir, "config.json")),
  ).config;
  if (JSON.stringify(saved) !== JSON.stringify(config)) {
    throw new Error(
      `${dir} contains an unfinished run with a different config; pass ` +
        `another --out folder or delete that run folder to start afresh.`,
    );
  }
  return decodeCheckpoint(bytes, path);
}

/**
 * Reads a run folder whose status is "complete".
 * @returns The run, or undefined when the folder is missing or unfinished.
 */
export async function readFinishedRun(
  dir: string,
  expected?: RunConfig,
): Promise<RunResult | undefined> {
  let status: { status?: string };
  try {
    status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
  } catch {
    return undefined;
  }
  if (status.status !== "complete") return undefined;
  const record = JSON.parse(
    await Deno.readTextFile(join(dir, "config.json")),
  );
  if (
    expected !== undefined &&
    JSON.stringify(record.config) !== JSON.stringify(expected)
  ) {
    throw new Error(
      `${dir} contains a finished run with a different config (an option or ` +
        `the toolkit version changed); pass another --out folder or delete ` +
        `that run folder to train it again.`,
    );
  }
  const metrics = parseMetricsCsv(
    await Deno.readTextFile(join(dir, "metrics.csv")),
  );
  return {
    dir,
    config: record.config,
    metrics,
    best: bestEpoch(metrics),
    reused: true,
    evaluation: await readEvaluation(dir),
  };
}

/** Result of {@linkcode evaluateRun}. */
export interface EvaluationResult {
  /** Run folder. */
  dir: string;
  /** Epoch of the checkpoint. */
  epoch: number;
  /** Test metrics measured now. */
  metrics: MetricsRow;
  /** Test accuracy logged during training for that epoch. */
  loggedTestAccuracy: number;
}

/**
 * Loads a run's best checkpoint and evaluates it on the test split.
 * @throws {Error} If the folder has no config or checkpoint.
 */
export async function evaluateRun(dir: string): Promise<EvaluationResult> {
  const configPath = join(dir, "config.json");
  const checkpointPath = join(dir, "best.ckpt");
  let record: { config: RunConfig };
  try {
    record = JSON.parse(await Deno.readTextFile(configPath));
  } catch (error) {
    throw new Error(
      `Cannot read ${configPath}: ${(error as Error).message}. Pass a run ` +
        `folder written by "deno task repro".`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(checkpointPath);
  } catch (error) {
    throw new Error(
      `Cannot read ${checkpointPath}: ${(error as Error).message}. The run ` +
        `may not have finished an epoch.`,
    );
  }
  const { tensors, meta } = decodeCheckpoint(bytes, checkpointPath);
  const config = record.config;
  const dataset = await openDataset(config);
  const model = buildModel(config, dataset);
  try {
    model.store.restore(tensors);
    const trainer = new Trainer(
      model,
      createStrategy("naive"),
      dataset,
      {
        epochs: config.train.epochs,
        batchSize: config.train.batchSize,
        seed: config.seed,
        evalBatchSize: config.train.evalBatchSize,
      },
    );
    const metrics = await trainer.evaluate("test");
    trainer.dispose();
    return {
      dir,
      epoch: meta.epoch as number,
      metrics,
      loggedTestAccuracy: meta.test_acc as number,
    };
  } finally {
    model.dispose();
  }
}
