/**
 * CAMDrop toolkit: GradCAM-guided masking of the dominant modality's
 * feature map for balanced audio-visual learning, on TensorFlow.js.
 *
 * @example
 * ```ts ignore
 * import { resolveConfig, runTraining, setupBackend } from "./lib/mod.ts";
 * await setupBackend("auto");
 * const config = resolveConfig("smoke", { method: "camdrop" });
 * const run = await runTraining(config, { outDir: "runs" });
 * console.log(run.best.test_acc);
 * ```
 *
 * @module
 */

export * from "./backend/mod.ts";
export * from "./balance/mod.ts";
export * from "./cam/mod.ts";
export * from "./data/mod.ts";
export * from "./experiments/mod.ts";
export * from "./metrics/mod.ts";
export * from "./models/mod.ts";
export * from "./plots/mod.ts";
export * from "./train/mod.ts";
