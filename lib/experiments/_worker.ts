/**
 * Worker entry of {@linkcode runInWorker}: sets up a backend, trains one
 * run and posts progress and the result back. Each worker has its own
 * tfjs engine, so runs in different workers share nothing.
 *
 * @module
 */

/// <reference lib="deno.worker" />

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
}

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const { config, outDir, reuse, environment, evaluation } = event.data;
  try {
    const backend = await setupBackend(config.backend as BackendRequest, {
      onWarning: (message) => self.postMessage({ type: "warning", message }),
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
