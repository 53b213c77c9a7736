/**
 * Runs training runs in parallel Deno workers. The wasm backend uses one
 * core per engine, so on a machine with k cores up to k runs train at
 * nearly the speed of one.
 *
 * @module
 */

import type { RunConfig } from "./config.ts";
import type { RunOptions, RunResult } from "./run.ts";
import { readFinishedRun } from "./run.ts";
import type { WorkerRequest } from "./_worker.ts";
import { join } from "node:path";

/** Options of {@linkcode runAll}. */
export interface RunAllOptions extends RunOptions {
  /**
   * Runs at a time. 1 trains in this thread; more start one worker per
   * run.
   * @default 1
   */
  jobs?: number;
  /** Called when a run starts, with its index. */
  onRun?: (config: RunConfig, index: number, count: number) => void;
  /**
   * Called when a run this call trained is complete: evaluated, with
   * status.json set to complete. Reused runs are not reported.
   */
  onRunDone?: (result: RunResult, config: RunConfig) => void;
  /** Called with a warning of a worker (for example a backend fallback). */
  onWarning?: (message: string, config: RunConfig) => void;
}

/**
 * Trains every config, `jobs` at a time, and returns the results in the
 * order of `configs`. Finished runs are reused without starting a worker.
 * Callbacks receive progress of all runs interleaved; `onEpoch` gets the
 * run's config to tell them apart.
 * @throws {Error} The first failure, naming the run; runs already started
 * finish first.
 */
export async function runAll(
  configs: RunConfig[],
  options: RunAllOptions,
): Promise<RunResult[]> {
  const jobs = options.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new Error(`runAll: jobs must be an integer >= 1, got ${jobs}.`);
  }
  const results: RunResult[] = new Array(configs.length);
  const pending: number[] = [];
  for (const [index, config] of configs.entries()) {
    const finished = options.reuse === false
      ? undefined
      : await readFinishedRun(join(options.outDir, config.name), config);
    if (finished) results[index] = finished;
    else pending.push(index);
  }
  if (jobs === 1) {
    const { runTraining } = await import("./run.ts");
    for (const index of pending) {
      options.onRun?.(configs[index], index, configs.length);
      results[index] = await runTraining(configs[index], options);
      options.onRunDone?.(results[index], configs[index]);
    }
    return results;
  }

  let failure: Error | undefined;
  const next = async (): Promise<void> => {
    while (pending.length > 0 && failure === undefined) {
      const index = pending.shift()!;
      options.onRun?.(configs[index], index, configs.length);
      try {
        results[index] = await runInWorker(configs[index], options);
        options.onRunDone?.(results[index], configs[index]);
      } catch (error) {
        failure ??= new Error(
          `Run ${configs[index].name} failed: ${(error as Error).message}`,
        );
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(jobs, pending.length) }, next),
  );
  if (failure) throw failure;
  return results;
}

/** Trains one run in a new worker and resolves with its result. */
export function runInWorker(
  config: RunConfig,
  options: RunAllOptions,
): Promise<RunResult> {
  const worker = new Worker(new URL("./_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise<RunResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent) => {
      const message = event.data;
      switch (message.type) {
        case "start":
          options.onStart?.(message.info);
          break;
        case "step":
          options.onStep?.({ ...message.progress, run: config.name });
          break;
        case "evaluate":
          options.onEvaluate?.(message.split);
          break;
        case "epoch":
          options.onEpoch?.(message.row, config);
          break;
        case "warning":
          options.onWarning?.(message.message, config);
          break;
        case "done":
          worker.terminate();
          resolve(message.result);
          break;
        case "error":
          worker.terminate();
          reject(new Error(message.message));
          break;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(event.message));
    };
    const request: WorkerRequest = {
      config,
      outDir: options.outDir,
      reuse: options.reuse ?? true,
      environment: options.environment ?? {},
      evaluation: options.evaluation ?? {},
      blasThreads: Math.max(
        1,
        Math.floor((navigator.hardwareConcurrency ?? 1) / (options.jobs ?? 1)),
      ),
    };
    worker.postMessage(request);
  });
}
