/**
 * The benchmark's results: derived ratios, the terminal table and the
 * Markdown record written to docs/benchmarks.md.
 *
 * @module
 */

import type { ShapeName } from "./cases.ts";

/** One measured training step configuration. */
export interface Measurement {
  /**
   * "ours" (tfjs wasm with its plain kernels), "ours-blas" (tfjs wasm
   * with the convolutions on OpenBLAS), "ours-onednn" (tfjs wasm with the
   * convolutions, batch norm, max pool and ReLU gradient on oneDNN),
   * "ours-webgpu" (tfjs webgpu) or "pytorch".
   */
  implementation:
    | "ours"
    | "ours-blas"
    | "ours-onednn"
    | "ours-webgpu"
    | "pytorch";
  /** The WebGPU adapter, for "ours-webgpu". */
  device?: string;
  /** Shape name. */
  shape: ShapeName;
  /** Balancing method. */
  method: string;
  /**
   * Compute threads (the native library's for "ours-blas" and
   * "ours-onednn"; wasm itself uses 1).
   */
  threads: number;
  /** Samples per step. */
  batchSize: number;
  /**
   * Samples per micro-batch when the step summed the gradients of several
   * (ours only; 0 or absent: the whole batch in one pass).
   */
  microBatch?: number;
  /** Untimed steps before the timed ones. */
  warmup: number;
  /** Timed steps. */
  timedSteps: number;
  /** Median seconds per timed step. */
  medianSeconds: number;
  /** Samples per second at the median step time. */
  samplesPerSecond: number;
  /** Forward FLOPs per sample. */
  forwardFlops: number;
  /** High-water RSS of the process (VmHWM or ru_maxrss). */
  rssPeakBytes?: number;
  /** Largest RSS sampled before and after each step (ours only). */
  rssSampledPeakBytes?: number;
  /** Peak bytes of live tensors during one step (ours only). */
  tensorPeakBytes?: number;
  /** Final wasm heap size (ours only). */
  wasmHeapBytes?: number;
}

/** A case that produced no measurement. */
export interface Failure {
  /** Case description, such as "ours paper naive, batch 16". */
  label: string;
  /** Error message or exit status. */
  error: string;
  /** Whether the wasm heap was full. */
  outOfMemory: boolean;
}

/** One sgemm ceiling measurement. */
export interface SgemmResult {
  /** BLAS threads. */
  threads: number;
  /** Best GFLOP/s over the repeats. */
  gflops: number;
  /** Matrix side n of the n x n products. */
  size: number;
  /** OpenBLAS version, when threadpoolctl reports it. */
  version?: string;
  /** Kernel family OpenBLAS chose, when threadpoolctl reports it. */
  architecture?: string;
}

/** Machine, versions and load of one benchmark run. */
export interface Environment {
  /** ISO date and time of the start. */
  date: string;
  /** "full" or "quick". */
  mode: "full" | "quick";
  /** CPU model name from lscpu. */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** Total memory in bytes. */
  memoryBytes: number;
  /** OS and kernel release. */
  os: string;
  /** Deno version. */
  deno: string;
  /** tfjs version. */
  tfjs: string;
  /** PyTorch version, when it imported. */
  torch?: string;
  /** Whether PyTorch reports oneDNN (MKL-DNN) support. */
  torchMkldnn?: boolean;
  /** NumPy version, when it imported. */
  numpy?: string;
  /** OpenBLAS build that the OpenBLAS kernels called, when they ran. */
  openBlas?: string;
  /** oneDNN build that the oneDNN kernels called, when they ran. */
  oneDnn?: string;
  /** 1-minute load average at the start. */
  loadBefore: number;
  /** 1-minute load average at the end. */
  loadAfter: number;
}

/** Everything one benchmark run produced. */
export interface Report {
  /** Machine, versions and load. */
  environment: Environment;
  /** Successful measurements, in run order. */
  measurements: Measurement[];
  /** Cases that failed, such as a batch that did not fit in memory. */
  failures: Failure[];
  /** sgemm ceilings by thread count. */
  sgemm: SgemmResult[];
  /** Reason PyTorch or NumPy is unavailable, when one is. */
  pythonProblem?: string;
  /** Disagreements between our FLOP count and PyTorch's. */
  flopWarnings: string[];
}

/** A derived ratio. */
export interface Ratio {
  /** Dividend and divisor in words, such as "ours / PyTorch". */
  label: string;
  /** The quotient. */
  value: number;
}

/** Effective GFLOP/s: 3 x forward FLOPs per sample x samples per second. */
export function effectiveGflops(m: Measurement): number {
  return 3 * m.forwardFlops * m.samplesPerSecond / 1e9;
}

/** Returns the first measurement that matches every defined field. */
function find(
  report: Report,
  query: Partial<Measurement>,
): Measurement | undefined {
  return report.measurements.find((m) =>
    Object.entries(query).every(([key, value]) =>
      value === undefined || m[key as keyof Measurement] === value
    )
  );
}

/** Computes the ratios the benchmark reports, skipping missing operands. */
export function ratios(report: Report): Ratio[] {
  const out: Ratio[] = [];
  const push = (label: string, a?: number, b?: number) => {
    if (a !== undefined && b !== undefined && b > 0) {
      out.push({ label, value: a / b });
    }
  };
  const shapes = [
    ...new Set(report.measurements.map((m) => m.shape)),
  ];
  const sgemm1 = report.sgemm.find((s) => s.threads === 1)?.gflops;
  const sgemm2 = report.sgemm.find((s) => s.threads === 2)?.gflops;
  for (const shape of shapes) {
    const naive = find(report, {
      implementation: "ours",
      shape,
      method: "naive",
    });
    const camdrop = find(report, {
      implementation: "ours",
      shape,
      method: "camdrop",
    });
    const batch = naive?.batchSize;
    const torch1 = find(report, {
      implementation: "pytorch",
      shape,
      threads: 1,
      batchSize: batch,
    });
    const torch2 = find(report, {
      implementation: "pytorch",
      shape,
      threads: 2,
      batchSize: batch,
    });
    // Ours against every PyTorch run of the shape; at 1 thread and the same
    // batch the comparison is like-for-like.
    const torchRuns = report.measurements.filter((m) =>
      m.implementation === "pytorch" && m.shape === shape
    );
    for (const torch of torchRuns) {
      const threads = torch.threads === 1
        ? "1 thread"
        : `${torch.threads} threads`;
      const alike = torch.threads === 1 && torch.batchSize === batch;
      push(
        `${shape}: ours naive at batch ${batch} / PyTorch ${threads} at ` +
          `batch ${torch.batchSize}, samples/s` +
          (alike ? " (like-for-like)" : ""),
        naive?.samplesPerSecond,
        torch.samplesPerSecond,
      );
    }
    push(
      `${shape}: ours CAMDrop / ours naive, step time`,
      camdrop?.medianSeconds,
      camdrop?.batchSize === batch ? naive?.medianSeconds : undefined,
    );
    push(
      `${shape}: ours naive / sgemm 1 thread, GFLOP/s`,
      naive && effectiveGflops(naive),
      sgemm1,
    );
    push(
      `${shape}: PyTorch 1 thread / sgemm 1 thread, GFLOP/s`,
      torch1 && effectiveGflops(torch1),
      sgemm1,
    );
    push(
      `${shape}: PyTorch 2 threads / sgemm 2 threads, GFLOP/s`,
      torch2 && effectiveGflops(torch2),
      sgemm2,
    );
    acceleratedRatios(report, "ours-blas", shape, naive, push);
    acceleratedRatios(report, "ours-onednn", shape, naive, push);
    webGpuRatios(report, shape, push);
  }
  return out;
}

/** Adds the ratios of the webgpu step: PyTorch on the CPU and CAMDrop. */
function webGpuRatios(
  report: Report,
  shape: ShapeName,
  push: (label: string, a?: number, b?: number) => void,
): void {
  const naive = find(report, {
    implementation: "ours-webgpu",
    shape,
    method: "naive",
  });
  if (naive === undefined) return;
  const camdrop = find(report, {
    implementation: "ours-webgpu",
    shape,
    method: "camdrop",
  });
  const torchRuns = report.measurements.filter((m) =>
    m.implementation === "pytorch" && m.shape === shape &&
    m.batchSize === naive.batchSize
  );
  for (const torch of torchRuns) {
    push(
      `${shape}: ours WebGPU naive / PyTorch CPU ${torch.threads} ` +
        `thread(s), samples/s`,
      naive.samplesPerSecond,
      torch.samplesPerSecond,
    );
  }
  push(
    `${shape}: ours WebGPU CAMDrop / ours WebGPU naive, step time`,
    camdrop?.medianSeconds,
    camdrop?.batchSize === naive.batchSize ? naive.medianSeconds : undefined,
  );
}

/** Short names of the accelerated paths in ratio labels. */
const PATH_NAMES = { "ours-blas": "OpenBLAS", "ours-onednn": "oneDNN" };

/**
 * Adds the ratios of an accelerated path: speed-up over the plain path,
 * PyTorch, CAMDrop's overhead and the sgemm ceiling.
 */
function acceleratedRatios(
  report: Report,
  implementation: "ours-blas" | "ours-onednn",
  shape: ShapeName,
  plain: Measurement | undefined,
  push: (label: string, a?: number, b?: number) => void,
): void {
  const name = PATH_NAMES[implementation];
  const naive = find(report, { implementation, shape, method: "naive" });
  if (naive === undefined) return;
  const camdrop = find(report, { implementation, shape, method: "camdrop" });
  const batch = naive.batchSize;
  push(
    `${shape}: ours ${name} naive at batch ${batch} / ours plain naive at ` +
      `batch ${plain?.batchSize}, samples/s (speed-up)`,
    naive.samplesPerSecond,
    plain?.samplesPerSecond,
  );
  const torchRuns = report.measurements.filter((m) =>
    m.implementation === "pytorch" && m.shape === shape
  );
  for (const torch of torchRuns) {
    const threads = torch.threads === 1
      ? "1 thread"
      : `${torch.threads} threads`;
    const alike = torch.threads === naive.threads &&
      torch.batchSize === batch;
    push(
      `${shape}: ours ${name} naive at batch ${batch} (${naive.threads} ` +
        `threads) / PyTorch ${threads} at batch ${torch.batchSize}, ` +
        "samples/s" + (alike ? " (like-for-like)" : ""),
      naive.samplesPerSecond,
      torch.samplesPerSecond,
    );
  }
  push(
    `${shape}: ours ${name} CAMDrop / ours ${name} naive, step time`,
    camdrop?.medianSeconds,
    camdrop?.batchSize === batch ? naive.medianSeconds : undefined,
  );
  const sgemm = report.sgemm.find((s) => s.threads === naive.threads)?.gflops;
  push(
    `${shape}: ours ${name} naive / sgemm ${naive.threads} ` +
      `${naive.threads === 1 ? "thread" : "threads"}, GFLOP/s`,
    effectiveGflops(naive),
    sgemm,
  );
}

const MIB = 1024 ** 2;

function mib(bytes?: number): string {
  return bytes === undefined ? "-" : (bytes / MIB).toFixed(0);
}

function implementationName(m: Measurement): string {
  switch (m.implementation) {
    case "ours":
      return "ours, tfjs wasm";
    case "ours-blas":
      return "ours, tfjs wasm + OpenBLAS convs";
    case "ours-onednn":
      return "ours, tfjs wasm + oneDNN";
    case "ours-webgpu":
      return `ours, tfjs webgpu (${m.device ?? "unknown adapter"})`;
    case "pytorch":
      return "PyTorch CPU";
  }
}

/** Rows of the results table, header first. */
export function tableRows(report: Report): string[][] {
  const rows = [[
    "shape",
    "implementation",
    "method",
    "threads",
    "batch",
    "steps (warm-up + timed)",
    "median step (s)",
    "samples/s",
    "effective GFLOP/s",
    "peak RSS (MiB)",
    "sampled RSS (MiB)",
    "peak tensors (MiB)",
    "wasm heap (MiB)",
  ]];
  for (const m of report.measurements) {
    rows.push([
      m.shape,
      implementationName(m),
      m.method,
      String(m.threads),
      m.microBatch
        ? `${m.batchSize} (${m.microBatch} x ${
          Math.ceil(m.batchSize / m.microBatch)
        })`
        : String(m.batchSize),
      `${m.warmup} + ${m.timedSteps}`,
      m.medianSeconds.toFixed(3),
      m.samplesPerSecond.toFixed(2),
      effectiveGflops(m).toFixed(1),
      mib(m.rssPeakBytes),
      mib(m.rssSampledPeakBytes),
      mib(m.tensorPeakBytes),
      mib(m.wasmHeapBytes),
    ]);
  }
  return rows;
}

/** Formats rows as space-aligned text columns. */
export function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((row) => row[i].length))
  );
  return rows
    .map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  "))
    .join("\n");
}

/** Formats rows as a Markdown table. */
export function markdownTable(rows: string[][]): string {
  const line = (row: string[]) => `| ${row.join(" | ")} |`;
  return [
    line(rows[0]),
    line(rows[0].map(() => "---")),
    ...rows.slice(1).map(line),
  ].join("\n");
}

/** Renders the terminal summary. */
export function textReport(report: Report): string {
  const lines = [textTable(tableRows(report)), ""];
  for (const s of report.sgemm) {
    lines.push(
      `sgemm ceiling, ${
        s.threads === 1 ? "1 thread" : `${s.threads} threads`
      }: ${s.gflops.toFixed(1)} GFLOP/s`,
    );
  }
  lines.push("");
  for (const ratio of ratios(report)) {
    lines.push(`${ratio.label}: ${ratio.value.toFixed(2)}`);
  }
  for (const failure of report.failures) {
    lines.push(`failed: ${failure.label}: ${failure.error}`);
  }
  if (report.pythonProblem !== undefined) {
    lines.push(`PyTorch reference unavailable: ${report.pythonProblem}`);
  }
  for (const warning of report.flopWarnings) lines.push(`warning: ${warning}`);
  return lines.join("\n");
}
