/**
 * Worker entry of {@linkcode runInWorker}: sets up a backend, trains one
 * run and posts progress and the result back. Each worker has its own
 * tfjs engine, so runs in different workers share nothing.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { blasRequestedByEnvironment } from "../backend/blas_kernels.ts";
import { setupBackend } from "../backend/select.ts";
import type { BackendRequest } from "../backend/select.ts";
import type { RunConfig } from "./config.ts";
import { type RunOptions, runTraining } from "./run.ts";

/** Message that starts a run. */
export interface WorkerRequest {
  /** Run config. */
  config: RunConfig;
  /** Parent folder of run folders. */
  outDir: string;
  /** Reuse a finished run. */
  reuse: boolean;
  /** Extra environment facts to record. */
  environment: Record<string, unknown>;
  /** Options of the evaluation after training. */
  evaluation: RunOptions["evaluation"];
  /**
   * Threads of the native kernels (oneDNN's or OpenBLAS's), so that
   * workers training at the same time share the cores instead of each
   * starting one thread per core.
   */
  blasThreads: number;
}

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const { config, outDir, reuse, environment, evaluation, blasThreads } =
    event.data;
  try {
    // CAMDROP_BLAS=0 still turns the accelerated path off.
    const blas = blasRequestedByEnvironment()
      ? { threads: blasThreads }
      : false;
    const backend = await setupBackend(config.backend as BackendRequest, {
      onWarning: (message) => self.postMessage({ type: "warning", message }),
      blas,
    });
    const result = await runTraining(config, {
      outDir,
      reuse,
      environment: { ...environment, backendInfo: backend },
      evaluation,
      onStart: (info) => self.postMessage({ type: "start", info }),
      onStep: (progress) => self.postMessage({ type: "step", progress }),
      onEvaluate: (split) => self.postMessage({ type: "evaluate", split }),
      onEpoch: (row) => self.postMessage({ type: "epoch", row }),
    });
    self.postMessage({ type: "done", result });
  } catch (error) {
    self.postMessage({
      type: "error",
      message: error instanceof Error ? error.message : String(error),
    });
  }
};
