/**
 * `deno task bench`: training-step throughput and peak memory of the
 * toolkit next to the same model in PyTorch and the CPU's sgemm ceiling.
 * Run with --help for the options.
 *
 * Each case runs in a child process of its own (bench/ours_step.ts,
 * bench/torch_step.py, bench/sgemm.py) so that its peak memory is its own.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type ShapeName, SHAPES, shapeSpec } from "../bench/cases.ts";
import { runChild } from "../bench/child.ts";
import { markdownReport } from "../bench/markdown.ts";
import type { OursFailure, OursResult } from "../bench/ours_step.ts";
import { ensurePython, PYTHON, runCommand } from "../bench/python.ts";
import {
  type Environment,
  type Failure,
  type Measurement,
  type Report,
  type SgemmResult,
  textReport,
} from "../bench/report.ts";
import { fail, usageError, writeErr } from "./_cli.ts";

const HELP = `Usage: deno task bench [options]

Measures training steps per second and peak memory of the toolkit (tfjs
wasm backend, with its plain kernels, with the convolutions on OpenBLAS,
and with the convolutions, batch norm, max pool and ReLU gradient on
oneDNN) at the CAMDrop paper's CREMA-D shapes and on the "default" model of deno
task repro, naive fusion and CAMDrop; the same model in PyTorch on the CPU
at 1 and 2 threads; and the CPU's float32 matrix-multiply ceiling. Prints a
table and ratios on stdout and progress on stderr.

Options:
  --quick        fewer steps, about 4 minutes on 2 idle cores; writes the
                 record only with --write.
  --write        write the record also with --quick.
  --no-write     do not write the record.
  --output FILE  record file (default: docs/benchmarks.md); its folder
                 must exist, and is checked before measuring.
  --shapes LIST  comma-separated shapes to measure: default, paper
                 (default: default,paper).
  --webgpu       also measure our step on the webgpu backend (naive and
                 CAMDrop, whole batches), for a machine with a GPU and its
                 Vulkan driver. Without a GPU, WebGPU runs on Mesa's
                 software driver, 10-20 times slower than wasm.
  --no-install   do not run apt-get to install the PyTorch reference
                 (python3-torch, python3-numpy, python3-threadpoolctl,
                 libopenblas0) when it is missing.
  --help         show this text.

Run it on an idle machine: other processes slow every step.
`;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OURS_SCRIPT = join(ROOT, "bench", "ours_step.ts");
const TORCH_SCRIPT = join(ROOT, "bench", "torch_step.py");
const SGEMM_SCRIPT = join(ROOT, "bench", "sgemm.py");

/** Untimed and timed steps per shape. */
interface StepPlan {
  warmup: number;
  steps: number;
}

const PLANS: Record<"full" | "quick", Record<ShapeName, StepPlan>> = {
  full: { paper: { warmup: 1, steps: 3 }, default: { warmup: 2, steps: 30 } },
  quick: { paper: { warmup: 1, steps: 1 }, default: { warmup: 1, steps: 5 } },
};

/**
 * Timed steps at the paper's shapes in a full run for the cases whose step
 * takes seconds rather than tens of seconds (oneDNN and PyTorch), so that
 * their ratios rest on more than three steps.
 */
const FAST_PAPER_STEPS = 7;

/** Returns the step plan of one case. */
function stepPlan(
  mode: "full" | "quick",
  shape: ShapeName,
  fast: boolean,
): StepPlan {
  const plan = PLANS[mode][shape];
  return mode === "full" && shape === "paper" && fast
    ? { ...plan, steps: FAST_PAPER_STEPS }
    : plan;
}

const SGEMM_REPEATS = { full: 5, quick: 3 };

const startedAt = performance.now();

function log(message: string): void {
  const seconds = Math.round((performance.now() - startedAt) / 1000);
  const minutes = String(Math.floor(seconds / 60)).padStart(2, "0");
  const clock = `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
  writeErr(`[${clock}] ${message}\n`);
}

function reason(tail: string[], code: number): string {
  const last = tail.filter((line) => line.trim() !== "").pop();
  return `exit ${code}${last === undefined ? "" : `: ${last.trim()}`}`;
}

/**
 * Our step with the plain wasm kernels, with the convolutions on BLAS, or
 * on the webgpu backend.
 */
type Variant = "plain" | "blas" | "onednn" | "webgpu";

/** Cases of --webgpu, measured after the CPU cases of each shape. */
const WEBGPU_CASES: [Variant, string][] = [
  ["webgpu", "naive"],
  ["webgpu", "camdrop"],
];

const IMPLEMENTATIONS: Record<Variant, Measurement["implementation"]> = {
  plain: "ours",
  blas: "ours-blas",
  onednn: "ours-onednn",
  webgpu: "ours-webgpu",
};

const VARIANT_LABELS: Record<Variant, string> = {
  plain: "ours",
  blas: "ours OpenBLAS",
  onednn: "ours oneDNN",
  webgpu: "ours WebGPU",
};

/** The convolution library of each accelerated variant (CAMDROP_CONV). */
const CONVOLUTIONS: Partial<Record<Variant, string>> = {
  blas: "openblas",
  onednn: "onednn",
};

/** Variants and methods that a run measures, in run order. */
const OURS_CASES: Record<"full" | "quick", [Variant, string][]> = {
  full: [
    ["plain", "naive"],
    ["plain", "camdrop"],
    ["blas", "naive"],
    ["blas", "camdrop"],
    ["onednn", "naive"],
    ["onednn", "camdrop"],
  ],
  // The plain and OpenBLAS CAMDrop steps are left out to stay near five
  // minutes.
  quick: [
    ["plain", "naive"],
    ["blas", "naive"],
    ["onednn", "naive"],
    ["onednn", "camdrop"],
  ],
};

/**
 * Runs our step for one shape and method at the shape's batch size,
 * halving the micro-batch (0: the whole batch) while the heap is full.
 */
async function measureOursCase(
  shape: ShapeName,
  variant: Variant,
  method: string,
  firstMicroBatch: number,
  plan: StepPlan,
  failures: Failure[],
): Promise<{ measurement?: Measurement; library?: string }> {
  const batch = shapeSpec(shape).batchSize;
  for (
    let micro = firstMicroBatch;
    micro >= 0;
    micro = micro === 1 ? -1 : Math.floor((micro || batch) / 2)
  ) {
    const label =
      `${VARIANT_LABELS[variant]} ${shape} ${method}, batch ${batch}` +
      (micro > 0 ? ` in micro-batches of ${micro}` : "");
    log(`${label}: ${plan.warmup} warm-up + ${plan.steps} timed step(s)`);
    const output = await runChild(Deno.execPath(), [
      "run",
      "-A",
      "--unstable-webgpu",
      OURS_SCRIPT,
      `--shape=${shape}`,
      `--method=${method}`,
      `--batch=${batch}`,
      `--micro-batch=${micro}`,
      `--warmup=${plan.warmup}`,
      `--steps=${plan.steps}`,
      ...(CONVOLUTIONS[variant] !== undefined ? ["--blas"] : []),
      ...(variant === "webgpu" ? ["--backend=webgpu"] : []),
    ], {
      env: {
        NO_COLOR: "1",
        ...(CONVOLUTIONS[variant] !== undefined
          ? { CAMDROP_CONV: CONVOLUTIONS[variant] }
          : {}),
      },
    });
    const json = output.json as OursResult | OursFailure | undefined;
    if (output.code === 0 && json !== undefined && "medianSeconds" in json) {
      const measurement: Measurement = {
        implementation: IMPLEMENTATIONS[variant],
        device: json.device,
        shape,
        method,
        threads: json.blas.used ? json.blas.threads ?? 1 : 1,
        batchSize: batch,
        microBatch: json.microBatch,
        warmup: plan.warmup,
        timedSteps: json.stepSeconds.length,
        medianSeconds: json.medianSeconds,
        samplesPerSecond: json.samplesPerSecond,
        forwardFlops: json.forwardFlops,
        rssPeakBytes: json.rssPeakBytes,
        rssSampledPeakBytes: json.rssSampledPeakBytes,
        tensorPeakBytes: json.tensorPeakBytes,
        wasmHeapBytes: json.wasmHeapBytes,
      };
      const blas = json.blas;
      return {
        measurement,
        library: blas.used
          ? `${blas.config} (${blas.library}, ${blas.threads} threads)`
          : undefined,
      };
    }
    const failure = json !== undefined && "error" in json ? json : undefined;
    const outOfMemory = failure?.outOfMemory ?? false;
    failures.push({
      label,
      error: outOfMemory
        ? `out of wasm memory: the heap had grown to ${
          ((failure!.wasmHeapBytes ?? 0) / 1024 ** 2).toFixed(0)
        } MiB of its 4 GiB limit`
        : failure?.error ?? reason(output.stderrTail, output.code),
      outOfMemory,
    });
    log(`${label} failed: ${failures[failures.length - 1].error}`);
    if (!outOfMemory) return {};
  }
  return {};
}

/** Runs the PyTorch reference for one shape, batch and thread count. */
async function measureTorchCase(
  shape: ShapeName,
  batch: number,
  threads: number,
  plan: StepPlan,
  failures: Failure[],
): Promise<{ measurement?: Measurement; mkldnn?: boolean }> {
  const label = `PyTorch ${shape} naive, batch ${batch}, ${
    threads === 1 ? "1 thread" : `${threads} threads`
  }`;
  log(`${label}: ${plan.warmup} warm-up + ${plan.steps} timed step(s)`);
  const spec = { ...shapeSpec(shape), batchSize: batch };
  const count = String(threads);
  const output = await runChild(PYTHON, [
    TORCH_SCRIPT,
    `--spec=${JSON.stringify(spec)}`,
    `--threads=${threads}`,
    `--warmup=${plan.warmup}`,
    `--steps=${plan.steps}`,
  ], {
    env: {
      OMP_NUM_THREADS: count,
      OPENBLAS_NUM_THREADS: count,
      MKL_NUM_THREADS: count,
    },
  });
  const json = output.json as {
    medianSeconds: number;
    samplesPerSecond: number;
    stepSeconds: number[];
    forwardFlops: number;
    rssPeakBytes: number;
    threads: number;
    mkldnn: boolean;
  } | undefined;
  if (output.code !== 0 || json === undefined) {
    failures.push({
      label,
      error: reason(output.stderrTail, output.code),
      outOfMemory: false,
    });
    return {};
  }
  return {
    mkldnn: json.mkldnn,
    measurement: {
      implementation: "pytorch",
      shape,
      method: "naive",
      threads: json.threads,
      batchSize: batch,
      warmup: plan.warmup,
      timedSteps: json.stepSeconds.length,
      medianSeconds: json.medianSeconds,
      samplesPerSecond: json.samplesPerSecond,
      forwardFlops: json.forwardFlops,
      rssPeakBytes: json.rssPeakBytes,
    },
  };
}

/** Measures NumPy's sgemm at `threads` threads; undefined on failure. */
async function measureSgemm(
  threads: number,
  repeats: number,
  failures: Failure[],
): Promise<SgemmResult | undefined> {
  log(`sgemm ceiling, ${threads === 1 ? "1 thread" : `${threads} threads`}`);
  // A forced OPENBLAS_CORETYPE (and its L2 size) makes a current OpenBLAS
  // choose slower kernels: unset both for this command alone.
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    OPENBLAS_NUM_THREADS: String(threads),
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const result = await runChild(PYTHON, [
    SGEMM_SCRIPT,
    `--repeats=${repeats}`,
  ], { env, clearEnv: true });
  const json = result.json as SgemmResult | undefined;
  if (result.code !== 0 || json === undefined) {
    failures.push({
      label: `sgemm, ${threads} BLAS threads`,
      error: reason(result.stderrTail, result.code),
      outOfMemory: false,
    });
    return undefined;
  }
  return { ...json, threads };
}

async function cpuModel(): Promise<string> {
  const result = await runCommand("lscpu", []);
  const match = result.stdout.match(/^Model name:\s*(.+)$/m);
  return match?.[1].trim() ?? "unknown (lscpu failed)";
}

async function debianVersion(name: string): Promise<string | undefined> {
  const result = await runCommand("dpkg-query", [
    "-W",
    "-f=${Version}",
    name,
  ]);
  return result.code === 0 && result.stdout !== "" ? result.stdout : undefined;
}

/** Compares our forward FLOP count with PyTorch's hook count per shape. */
function checkFlops(measurements: Measurement[]): string[] {
  const warnings: string[] = [];
  for (const shape of SHAPES) {
    const ours = measurements.find((m) =>
      m.shape === shape && m.implementation === "ours"
    );
    const torch = measurements.find((m) =>
      m.shape === shape && m.implementation === "pytorch"
    );
    if (ours !== undefined && torch !== undefined) {
      if (ours.forwardFlops !== torch.forwardFlops) {
        warnings.push(
          `${shape}: our forward FLOP count ${ours.forwardFlops} differs from ` +
            `PyTorch's ${torch.forwardFlops}; the two models differ.`,
        );
      }
    }
  }
  return warnings;
}

/**
 * Fails before any measurement when the record cannot be written: its
 * folder is missing or the launcher did not grant writing there.
 */
async function checkOutput(output: string): Promise<void> {
  const folder = dirname(resolve(output));
  let isFolder = false;
  try {
    isFolder = (await Deno.stat(folder)).isDirectory;
  } catch {
    // Missing or unreadable: reported below.
  }
  if (!isFolder) {
    fail(
      `cannot write the record to ${output}: the folder ${folder} does not ` +
        "exist. Create it or pass another --output.",
    );
  }
  const { state } = await Deno.permissions.query({
    name: "write",
    path: output,
  });
  if (state !== "granted") {
    fail(
      `cannot write the record to ${output}: no write permission there. ` +
        "Run deno task bench, which grants it for --output, or pass " +
        "--no-write.",
    );
  }
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        write: { type: "boolean", default: false },
        "no-write": { type: "boolean", default: false },
        output: {
          type: "string",
          default: join(ROOT, "docs", "benchmarks.md"),
        },
        "no-install": { type: "boolean", default: false },
        shapes: { type: "string", default: SHAPES.join(",") },
        webgpu: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    fail(usageError(error));
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.write && values["no-write"]) {
    fail("--write and --no-write contradict each other: give one of them.");
  }
  const shapes = values.shapes.split(",").map((name) => name.trim());
  for (const name of shapes) {
    if (!(SHAPES as readonly string[]).includes(name)) {
      fail(
        `invalid shape "${name}" in --shapes: expected one of ` +
          `${SHAPES.join(", ")}.`,
      );
    }
  }
  const selected = SHAPES.filter((name) => shapes.includes(name));
  const mode = values.quick ? "quick" : "full";
  const write = values.write || (!values.quick && !values["no-write"]);
  if (write) await checkOutput(values.output);
  const failures: Failure[] = [];
  const measurements: Measurement[] = [];
  const loadBefore = Deno.loadavg()[0];
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  if (loadBefore > 1) {
    log(
      `warning: the 1-minute load average is ${loadBefore.toFixed(2)}; ` +
        "other processes will slow the steps.",
    );
  }

  // PyTorch and NumPy reference, installed with apt-get when missing.
  log("checking the PyTorch reference under /usr/bin/python3");
  const python = await ensurePython({
    install: !values["no-install"],
    log,
  });
  if (python.problem !== undefined) {
    log(`PyTorch reference incomplete: ${python.problem}`);
  }

  // The CPU's FP32 ceiling.
  const sgemm: SgemmResult[] = [];
  if (python.numpy !== undefined) {
    for (const threads of [1, 2]) {
      const result = await measureSgemm(threads, SGEMM_REPEATS[mode], failures);
      if (result !== undefined) sgemm.push(result);
    }
  }

  // Our step: the small default model first, then the CREMA-D shapes,
  // each with the plain kernels and on the OpenBLAS and oneDNN paths.
  let openBlas: string | undefined;
  let oneDnn: string | undefined;
  for (const shape of selected) {
    // A micro-batch that filled the heap once is not tried again.
    const microBatches = new Map<Variant, number>();
    const cases = values.webgpu
      ? [...OURS_CASES[mode], ...WEBGPU_CASES]
      : OURS_CASES[mode];
    for (const [variant, method] of cases) {
      // The GPU has no 4 GiB heap. On oneDNN the paper's batch of 16 fits
      // in one pass (3.2 GiB of heap), which also makes it like-for-like
      // with PyTorch. OpenBLAS's step took 9.4 s in one pass against
      // 6.7 s in two halves, so it keeps the shape's micro-batch.
      const firstMicroBatch = variant === "webgpu" || variant === "onednn"
        ? 0
        : shapeSpec(shape).microBatch;
      const result = await measureOursCase(
        shape,
        variant,
        method,
        microBatches.get(variant) ?? firstMicroBatch,
        stepPlan(mode, shape, variant === "onednn"),
        failures,
      );
      const m = result.measurement;
      if (m === undefined) continue;
      measurements.push(m);
      if (variant === "blas") openBlas ??= result.library;
      if (variant === "onednn") oneDnn ??= result.library;
      microBatches.set(variant, m.microBatch ?? 0);
    }
  }

  // PyTorch at the shape's batch, in one pass.
  let mkldnn: boolean | undefined;
  if (python.torch !== undefined) {
    for (const shape of selected) {
      for (const threads of [1, 2]) {
        const result = await measureTorchCase(
          shape,
          shapeSpec(shape).batchSize,
          threads,
          stepPlan(mode, shape, true),
          failures,
        );
        if (result.measurement !== undefined) {
          measurements.push(result.measurement);
        }
        mkldnn ??= result.mkldnn;
      }
    }
  }

  const environment: Environment = {
    date,
    mode,
    cpu: await cpuModel(),
    cores: navigator.hardwareConcurrency,
    memoryBytes: Deno.systemMemoryInfo().total,
    os: `${Deno.build.os} ${Deno.osRelease()} (${Deno.build.arch})`,
    deno: Deno.version.deno,
    tfjs: tf.version.tfjs,
    torch: python.torch === undefined
      ? undefined
      : `${python.torch} (Debian python3-torch ${
        await debianVersion("python3-torch") ?? "of unknown version"
      })`,
    torchMkldnn: mkldnn,
    numpy: python.numpy,
    openBlas,
    oneDnn,
    loadBefore,
    loadAfter: Deno.loadavg()[0],
  };
  const report: Report = {
    environment,
    measurements,
    failures,
    sgemm,
    pythonProblem: python.problem,
    flopWarnings: checkFlops(measurements),
  };
  console.log(textReport(report));

  if (write) {
    try {
      await Deno.writeTextFile(values.output, markdownReport(report));
    } catch (error) {
      fail(
        `failed to write ${values.output}: ${(error as Error).message}. ` +
          "Pass --output with a writable path (deno task bench may write " +
          "only under docs/ and the temporary folder).",
      );
    }
    // deno fmt wraps Markdown prose, so format the record as the check task
    // expects it.
    await runChild(Deno.execPath(), ["fmt", "--quiet", values.output], {
      cwd: ROOT,
    });
    log(`wrote ${values.output}`);
  } else {
    log(`did not write ${values.output} (pass --write to write it)`);
  }
}

if (import.meta.main) {
  await main();
}
