import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { findWebGpuProblem, runtimeGpu } from "../lib/backend/_webgpu.ts";
import type { OursFailure, OursResult } from "./ours_step.ts";

const SCRIPT = fileURLToPath(new URL("./ours_step.ts", import.meta.url));

/** Runs bench/ours_step.ts in a child process and parses its JSON line. */
async function oursStep(
  args: string[],
): Promise<{ code: number; json: OursResult | OursFailure; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", SCRIPT, ...args],
    env: { NO_COLOR: "1", CAMDROP_BLAS: "0" },
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  const stderr = new TextDecoder().decode(output.stderr);
  const last = stdout.split("\n").at(-1) ?? "";
  let json: OursResult | OursFailure;
  try {
    json = JSON.parse(last);
  } catch {
    throw new Error(`no JSON line on stdout: ${stdout}\n${stderr}`);
  }
  return { code: output.code, json, stderr };
}

Deno.test({
  name: "bench step on the default shape in micro-batches",
  sanitizeResources: false,
  fn: async () => {
    const { code, json, stderr } = await oursStep([
      "--shape=default",
      "--warmup=0",
      "--steps=2",
      "--micro-batch=6",
    ]);
    assert.equal(code, 0, stderr);
    assert.ok("medianSeconds" in json, JSON.stringify(json));
    const result = json as OursResult;
    assert.equal(result.batchSize, 16);
    // 16 samples in micro-batches of 6: 6 + 6 + 4.
    assert.equal(result.microBatch, 6);
    assert.equal(result.stepSeconds.length, 2);
    assert.ok(result.medianSeconds > 0);
    assert.ok(
      Math.abs(result.samplesPerSecond - 16 / result.medianSeconds) < 1e-9,
    );
    assert.equal(result.blas.used, false);
    assert.ok(result.forwardFlops > 0);
    assert.ok(result.parameters > 0);
    assert.ok(result.tensorPeakBytes > result.tensorBytesAfter);
  },
});

Deno.test({
  name: "bench step records a micro-batch as large as the batch as 0",
  sanitizeResources: false,
  fn: async () => {
    const { code, json, stderr } = await oursStep([
      "--shape=default",
      "--warmup=0",
      "--steps=1",
      "--micro-batch=16",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal((json as OursResult).microBatch, 0);
  },
});

Deno.test({
  name: "bench step rejects a negative micro-batch",
  sanitizeResources: false,
  fn: async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, "--shape=default", "--micro-batch=-2"],
      env: { NO_COLOR: "1" },
    }).output();
    assert.notEqual(output.code, 0);
    assert.match(
      new TextDecoder().decode(output.stderr),
      /Invalid --micro-batch "-2": expected an integer >= 0/,
    );
  },
});

// Without an adapter the webgpu case is skipped with the reason printed;
// with CI=true it runs and fails, since CI installs Mesa's Vulkan driver.
const gpuProblem = await findWebGpuProblem(runtimeGpu());
const skipWebGpu = gpuProblem !== undefined && Deno.env.get("CI") !== "true";
if (skipWebGpu) console.warn(`skip: bench step on webgpu: ${gpuProblem}`);

Deno.test({
  name: "bench step on webgpu names the adapter",
  ignore: skipWebGpu,
  sanitizeResources: false,
  fn: async () => {
    const { code, json, stderr } = await oursStep([
      "--shape=default",
      "--backend=webgpu",
      "--warmup=0",
      "--steps=1",
      "--method=camdrop",
    ]);
    assert.equal(code, 0, stderr);
    const result = json as OursResult;
    assert.equal(result.backend, "webgpu");
    assert.notEqual(result.device, undefined);
    assert.ok(result.device!.length > 0);
    assert.equal(result.wasmHeapBytes, undefined);
    assert.ok(result.medianSeconds > 0);
  },
});
