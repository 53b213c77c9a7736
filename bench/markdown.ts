/**
 * The Markdown record of a benchmark run, docs/benchmarks.md.
 *
 * @module
 */

import { defaultShape, describeShape, PAPER_SHAPE } from "./cases.ts";
import {
  markdownTable,
  ratios,
  type Report,
  type SgemmResult,
  tableRows,
} from "./report.ts";

function sgemmLine(s: SgemmResult): string {
  const blas = s.version === undefined
    ? "NumPy's BLAS"
    : `OpenBLAS ${s.version}, ${s.architecture ?? "unknown"} kernels`;
  const threads = s.threads === 1 ? "1 thread" : `${s.threads} threads`;
  return `- ${threads}: ${s.gflops.toFixed(1)} GFLOP/s ` +
    `(${blas}, ${s.size} x ${s.size} float32 products, best of the repeats)`;
}

function machineSection(report: Report): string[] {
  const e = report.environment;
  const torch = e.torch === undefined
    ? `unavailable (${report.pythonProblem ?? "not run"})`
    : `${e.torch}, oneDNN ${e.torchMkldnn ? "available" : "unavailable"}`;
  return [
    "## Machine",
    "",
    `- Date: ${e.date} (${e.mode} run)`,
    `- CPU: ${e.cpu}, ${e.cores} logical CPUs, ` +
    `${(e.memoryBytes / 1024 ** 3).toFixed(0)} GiB memory, no GPU`,
    `- OS: ${e.os}`,
    `- Deno ${e.deno}, TensorFlow.js ${e.tfjs} with the wasm backend ` +
    "(single-threaded, XNNPACK and SIMD, with the toolkit's gradient kernels)",
    `- PyTorch: ${torch}`,
    `- NumPy: ${e.numpy ?? "unavailable"}`,
    `- OpenBLAS for the OpenBLAS path: ${e.openBlas ?? "not used"}`,
    `- oneDNN for the oneDNN path: ${e.oneDnn ?? "not used"}`,
    `- 1-minute load average: ${e.loadBefore.toFixed(2)} at the start, ` +
    `${e.loadAfter.toFixed(2)} at the end. ` +
    (e.loadBefore > 0.5
      ? "The start value comes from processes that ran before the " +
        "benchmark and may have shared the CPUs with it. "
      : "The machine was idle at the start. ") +
    "The benchmark itself adds about 1, and 2 while PyTorch runs on " +
    "2 threads.",
  ];
}

function resultsSection(report: Report): string[] {
  const lines = [
    "## Results",
    "",
    markdownTable(tableRows(report)),
    "",
    "FP32 ceiling of this CPU (NumPy matrix products):",
    "",
    ...report.sgemm.map(sgemmLine),
  ];
  if (report.sgemm.length === 0) lines.push("- not measured");
  lines.push("", "Ratios:", "");
  for (const ratio of ratios(report)) {
    lines.push(`- ${ratio.label}: ${ratio.value.toFixed(2)}`);
  }
  if (report.failures.length > 0) {
    lines.push("", "Cases that failed:", "");
    for (const failure of report.failures) {
      lines.push(`- ${failure.label}: ${failure.error}`);
    }
  }
  for (const warning of report.flopWarnings) {
    lines.push("", `Warning: ${warning}`);
  }
  return lines;
}

function shapesItem(): string {
  return `- **Shapes**: "paper" is the CAMDrop paper's CREMA-D setting: ` +
    `${describeShape(PAPER_SHAPE)}. "default" is the "default" preset of ` +
    `\`deno task repro\`: ${describeShape(defaultShape())}.\n`;
}

// Written before the BLAS kernels existed and kept as it was, so that each
// new record can be set against it.
const PREDICTION_SECTION = `## Route and prediction for the BLAS path

Written before the BLAS kernels existed. A per-kernel profile of one training
step at the paper's shapes took batch 2 on tfjs wasm, on 2 cores shared with a
training job. Of 7.25 s of kernel time, 6.45 s went to the three convolution
kernels: 2.85 s in \`Conv2DBackpropInput\`, 2.34 s in
\`Conv2DBackpropFilter\` and 1.26 s in \`Conv2D\`. The rest (max-pool
gradient, batch-norm arithmetic, reductions) took 0.8 s. The route: run all
three convolution kernels as \`cblas_sgemm\` calls of OpenBLAS on 2 threads,
directly on the wasm heap, with im2col and col2im in JavaScript for filters
larger than 1x1. Estimate: sgemm alone reaches 82.5 GFLOP/s on one thread and
149 on two, so the convolutions may reach 50-70 GFLOP/s including the im2col
and col2im copies. The 19.6 s step at batch 8 would then take 5-7 s, a speed-up
of 3-4x, which moves the ratio to PyTorch on 1 thread from 0.21 to 0.6-0.8. It
stays below 1.0 because the other kernels stay on one wasm thread. At the
default shapes (width 4) the convolutions are small and kernel call overhead
dominates, so the estimate there is 1.0-1.3x.

Measured afterwards under load: 2.27x at the paper's shapes (45.8 s to 20.2 s
a step at batch 8), ratio 0.41 to PyTorch on 1 thread.

## Second route: fewer copies around the sgemm calls

Written before the whole-step measurement of the change. im2col copied
each patch row one float at a time, and at stride 1 the input gradient went
through col2im, a scattered add in JavaScript. The change has two parts.
Runs of 24 floats or more are copied with \`TypedArray.set\`, a memory copy.
At stride 1 the input gradient becomes the convolution of the output
gradient with the filter rotated by 180 degrees, which needs im2col only;
col2im stays for stride 2. Single layers were timed at batch 16 with
OpenBLAS on 1 thread, on 2 cores shared with two training jobs. The 56 x 56
x 64 3x3 layer went from 103 to 73 ms (forward), 78 to 67 ms (filter
gradient) and 99 to 71 ms (input gradient). Estimate for the whole step at
the paper's shapes: 1.15-1.3x
faster on the BLAS path, since the convolutions are most but not all of the
step; no change on the default model, whose convolutions stay on XNNPACK.

## Third and fourth routes: max-pool gradient and batch norm

After the second route, one BLAS-path step at the paper's shapes was
profiled per kernel (batch 4, OpenBLAS on 1 thread, same shared machine). Of
2.78 s of kernel time, 61 % went to the three convolution kernels, 10.5 % to
the shipped \`MaxPoolGrad\` (2 calls) and about 26 % to the elementwise and
reduction kernels of batch norm. Prediction: a JavaScript max-pool gradient
in one
pass over the output windows, 2-3 times as fast, saves about 6 %; batch norm
as two fused kernels of two passes each, in place of about fifteen kernels,
saves 10-15 %. Measured: \`MaxPoolGrad\` went from 292 to 166 ms of the
profiled step. Batch norm, alternating steps with and without the fused
kernels in one process: 2.50-2.59 s against 2.57-2.63 s, 2-3 % rather than
the predicted 10-15 %, because the JavaScript loops are slower per element
than the SIMD kernels they replace.

Routes two to four were not measured on a whole step one at a time: the
first record came from another machine (an AMD EPYC with Zen kernels, load
6-12), and the next idle record (2026-12-04, 23:55) has all three. There the
BLAS path was 3.50 times the plain path at the paper's shapes (6.74 s against
23.6 s a step at batch 16 in micro-batches of 8) and 0.41 of PyTorch on 2
threads. That code was profiled at batch 8 with OpenBLAS on 2 threads. The
three convolution kernels took 2.58 s of 3.75 s of kernel time, and the
single-threaded rest took 1.17 s (fused batch norm 0.58 s, max-pool gradient
0.22 s). Both halves would have to halve to match PyTorch. The next route
is SIMD wasm for batch norm, pooling gradients and the im2col copies, in a
small module that shares the wasm backend's memory.

## Fifth route: oneDNN

Debian's PyTorch gets its CPU convolutions from oneDNN (libdnnl2 2.6.3,
installed with python3-torch), which picks AVX-512 kernels for each shape
and runs them on OpenMP threads. The route: call oneDNN's primitives
through \`Deno.dlopen\` on the wasm heap, as the BLAS path calls sgemm,
with activations in tfjs's NHWC layout and only the filters reordered.
This route was not predicted in writing before it was measured. Each piece
was measured on its own as it landed, at the paper's shapes: batch 16 in
micro-batches of 8, 2 threads, idle machine, where the OpenBLAS path took 6.27 s
a step in the same session.

1. The three convolution kernels on oneDNN: 4.21 s. Convolutions went
   from 2.58 s to about 1.0 s of a profiled micro-batch of 8.
2. Batch norm forward and backward on oneDNN's primitive: 3.31 s (0.58 s
   to 0.05 s of the micro-batch). The fused kernels now keep x and the
   batch statistics instead of x_hat.
3. Max pool forward on oneDNN, keeping its workspace, and the gradient
   from that workspace; an \`Identity\` kernel that shares the buffer
   instead of copying it, so that the tape's copy of the pool's output
   finds the workspace: 2.64 s.
4. The ReLU gradient as one kernel (oneDNN's eltwise backward) instead of
   tfjs's Step, Cast and Multiply: 2.37 s.

With these pieces, a batch of 16 fits in one pass (3.2 GiB of heap), so
the oneDNN rows below take whole batches, like PyTorch.
`;

const METHOD_SECTION = `## What is measured

- **Step**: one call of \`Trainer.trainStep\` (our side), the full training
  step of \`deno task repro\`: both encoders, dominance from the probe heads,
  CAMDrop's GradCAM and masks when the method is CAMDrop, concat fusion, the
  fused cross-entropy plus both probe cross-entropies, the finiteness check of
  the loss and the gradient norm, and SGD (momentum 0.9, weight decay 1e-4).
  Turning the batch into tensors is part of the step; making the batch is not.
- **Timing**: the median over the timed steps, after untimed warm-up steps;
  samples/s = batch / median step time.
- **Batch**: both sides train at the shape's batch size. On the plain and
  OpenBLAS paths at the paper's shapes, our step sums the gradients of two
  micro-batches of 8 before its one update, as the paper preset
  (\`--micro-batch auto\`) does, and the batch column shows "16 (8 x 2)".
  The plain path needs more than the 4 GiB wasm heap for one pass of 16,
  and the OpenBLAS path was slower in one pass. Batch-norm statistics then
  come from 8 samples at a time. The oneDNN path and PyTorch take the 16
  samples in one pass.
- **Effective GFLOP/s** = 3 x forward FLOPs per sample x samples/s, where the
  forward FLOPs are 2 x the multiply-adds of every convolution and dense layer
  (\`bench/flops.ts\`, checked against a count from PyTorch forward hooks). The
  factor 3 stands for the forward pass and the two gradient products of the
  backward pass; batch norm, pooling and the CAM are not counted.
- **Memory**: peak RSS is the process's high-water resident set size (VmHWM in
  /proc/self/status for ours, \`ru_maxrss\` for PyTorch), each case in a
  process of its own, so it includes the runtime (V8 or the Python
  interpreter with PyTorch). Sampled RSS is the largest
  \`Deno.memoryUsage().rss\` read before and after each step. Peak tensors is
  the largest \`tf.memory().numBytes\` during one extra step, as
  \`tf.profile\` records it. The wasm heap only grows,
  so its final size is the peak the backend reserved; tfjs-backend-wasm 4.22
  stops it at 4 GiB.
- **PyTorch reference** (\`bench/torch_step.py\`): the same model written in
  PyTorch (no conv biases, batch statistics, probe heads on detached features,
  the same loss, optimiser and finiteness check), naive fusion only, on
  random input of the same shapes, with \`torch.set_num_threads\` at 1 and 2.
  Our wasm backend runs on one thread, so PyTorch at 1 thread is the
  like-for-like comparison; 2 threads is what PyTorch gets from this machine.
- **OpenBLAS path** ("ours, tfjs wasm + OpenBLAS convs"): the same step with
  \`Conv2D\`, \`Conv2DBackpropFilter\` and \`Conv2DBackpropInput\` run as
  OpenBLAS sgemm calls through \`Deno.dlopen\` on the wasm heap
  (\`lib/backend/blas_kernels.ts\`), with im2col in JavaScript. At stride 1
  the input gradient is the convolution of the output gradient with the
  rotated filter; at stride 2 it is a col2im sum in JavaScript.
  Its threads column is OpenBLAS's pool; every other kernel still runs on
  one wasm thread. Results are bit-identical from run to run at a fixed
  OpenBLAS thread count.
- **oneDNN path** ("ours, tfjs wasm + oneDNN"): the same step with the
  three convolution kernels, batch norm, max pool and the ReLU gradient on
  oneDNN. They run as oneDNN primitives (forward and backward) through \`Deno.dlopen\` on the wasm heap
  (\`lib/backend/_onednn.ts\`), on oneDNN's OpenMP threads (the threads
  column). The remaining kernels (elementwise arithmetic, reductions, the
  dense layers, the optimiser) run on one wasm thread. This is the default
  accelerated path when libdnnl2 is installed.
- **WebGPU** (\`deno task bench --webgpu\`, "ours, tfjs webgpu"): the same
  step on tfjs's webgpu backend, whole batches, with the adapter as Deno's
  \`GPUAdapter.info\` names it. The step ends with reads of the loss and the
  statistics, so its time includes the wait for the GPU. On a machine
  without a GPU, the adapter is Mesa's software driver (llvmpipe).
- **Ceiling**: NumPy \`matmul\` of float32 matrices on OpenBLAS
  (\`bench/sgemm.py\`), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for
  that command, since a forced core type slows a current OpenBLAS.
`;

/** Names of Mesa's CPU Vulkan drivers, as WebGPU adapters report them. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

/** Names that bench/ours_step.ts gives an adapter without a name. */
const UNNAMED_ADAPTER = /^(unknown|unnamed) adapter$/;

function limitsSection(report: Report): string[] {
  const lines = ["## Limitations", ""];
  const gpus = [
    ...new Set(
      report.measurements
        .filter((m) => m.implementation === "ours-webgpu")
        .map((m) => m.device ?? "unknown adapter"),
    ),
  ];
  // An adapter that gave no name may be a software one, so it does not
  // count as a GPU figure.
  const hardware = gpus.filter((name) =>
    !SOFTWARE_ADAPTER.test(name) && !UNNAMED_ADAPTER.test(name)
  );
  if (hardware.length === 0) {
    lines.push(
      "- No GPU figure exists yet: WebGPU on an NVIDIA GPU has not been " +
        "measured (`deno task bench --webgpu` on a machine with one), and " +
        "neither has `@tensorflow/tfjs-node-gpu`, which cannot be installed " +
        "without internet access." +
        (gpus.length > 0
          ? ` The webgpu rows above ran on a software or unnamed adapter (${
            gpus.join("; ")
          }), which tests the code path, not a GPU's speed.`
          : ""),
    );
  } else {
    lines.push(
      `- The webgpu rows ran on ${hardware.join("; ")}. ` +
        "`@tensorflow/tfjs-node-gpu` has not been measured: it cannot be " +
        "installed without internet access.",
    );
  }
  const outOfMemory = report.failures.filter((f) => f.outOfMemory);
  if (outOfMemory.length > 0) {
    lines.push(
      `- ${outOfMemory.map((f) => f.label).join("; ")}: the step needs ` +
        "more than the 4 GiB wasm heap. The benchmark then halves the " +
        "micro-batch until a step fits; the batch stays the same.",
    );
  }
  lines.push(
    "- The paper's shapes get few timed steps (in a full run 7 on oneDNN " +
      "and PyTorch, 3 on the slower paths; 1 with --quick), so one slow " +
      "step moves the median. The timed steps of one case differed by up " +
      "to 17 % in one run (2.29-2.68 s on oneDNN, 2026-12-05), so a " +
      "CAMDrop / naive ratio within 0.9-1.1 does not tell the two apart.",
  );
  return lines;
}

/** Renders docs/benchmarks.md. */
export function markdownReport(report: Report): string {
  return [
    "# Benchmarks",
    "",
    "Training-step speed and memory of the toolkit on the CPU, next to the " +
    "same model in PyTorch and the CPU's matrix-multiply ceiling. " +
    "`deno task bench` rewrites this file (about 8 minutes on 2 idle " +
    "cores); `deno task bench --quick` takes fewer steps (about 4 minutes), " +
    "prints the results and writes this file only with `--write`. Run it " +
    "on an idle machine.",
    "",
    PREDICTION_SECTION,
    ...machineSection(report),
    "",
    ...resultsSection(report),
    "",
    METHOD_SECTION + shapesItem(),
    ...limitsSection(report),
    "",
  ].join("\n");
}
