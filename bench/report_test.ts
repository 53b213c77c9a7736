import assert from "node:assert/strict";
import {
  effectiveGflops,
  markdownTable,
  type Measurement,
  ratios,
  type Report,
  tableRows,
} from "./report.ts";
import { markdownReport } from "./markdown.ts";
import { median } from "./stats.ts";

function measurement(overrides: Partial<Measurement>): Measurement {
  return {
    implementation: "ours",
    shape: "paper",
    method: "naive",
    threads: 1,
    batchSize: 8,
    warmup: 1,
    timedSteps: 3,
    medianSeconds: 2,
    samplesPerSecond: 4,
    forwardFlops: 1e9,
    ...overrides,
  };
}

function report(measurements: Measurement[]): Report {
  return {
    environment: {
      date: "2025-01-01T00:00:00Z",
      mode: "quick",
      cpu: "test CPU",
      cores: 2,
      memoryBytes: 2 ** 30,
      os: "linux",
      deno: "2",
      tfjs: "4.22.0",
      loadBefore: 0,
      loadAfter: 1,
    },
    measurements,
    failures: [],
    sgemm: [{ threads: 1, gflops: 100, size: 2048 }],
    flopWarnings: [],
  };
}

Deno.test("effectiveGflops is three forward passes", () => {
  // 3 x 1 GFLOP x 4 samples/s.
  assert.equal(effectiveGflops(measurement({})), 12);
});

Deno.test("ratios compare PyTorch at our batch", () => {
  const values = ratios(report([
    measurement({}),
    measurement({ method: "camdrop", medianSeconds: 3 }),
    measurement({
      implementation: "pytorch",
      batchSize: 16,
      samplesPerSecond: 100,
    }),
    measurement({ implementation: "pytorch", samplesPerSecond: 8 }),
  ]));
  const byLabel = new Map(values.map((r) => [r.label, r.value]));
  assert.equal(
    byLabel.get(
      "paper: ours naive at batch 8 / PyTorch 1 thread at batch 8, " +
        "samples/s (like-for-like)",
    ),
    0.5,
  );
  assert.equal(
    byLabel.get(
      "paper: ours naive at batch 8 / PyTorch 1 thread at batch 16, " +
        "samples/s",
    ),
    0.04,
  );
  assert.equal(byLabel.get("paper: ours CAMDrop / ours naive, step time"), 1.5);
  assert.equal(
    byLabel.get("paper: ours naive / sgemm 1 thread, GFLOP/s"),
    0.12,
  );
  // No PyTorch run at 2 threads and no 2-thread ceiling: no such ratios.
  assert.equal(values.some((r) => r.label.includes("2 threads")), false);
});

Deno.test("ratios skip CAMDrop at another batch", () => {
  const values = ratios(report([
    measurement({}),
    measurement({ method: "camdrop", batchSize: 4 }),
  ]));
  assert.equal(values.some((r) => r.label.includes("CAMDrop")), false);
});

for (
  const [implementation, name] of [
    ["ours-blas", "OpenBLAS"],
    ["ours-onednn", "oneDNN"],
  ] as const
) {
  Deno.test(`ratios compare the ${name} path`, () => {
    const values = ratios(report([
      measurement({}),
      measurement({
        implementation,
        threads: 2,
        batchSize: 16,
        samplesPerSecond: 12,
      }),
      measurement({
        implementation,
        method: "camdrop",
        threads: 2,
        batchSize: 16,
        medianSeconds: 3,
      }),
      measurement({
        implementation: "pytorch",
        threads: 2,
        batchSize: 16,
        samplesPerSecond: 6,
      }),
    ]));
    const byLabel = new Map(values.map((r) => [r.label, r.value]));
    assert.equal(
      byLabel.get(
        `paper: ours ${name} naive at batch 16 / ours plain naive at ` +
          "batch 8, samples/s (speed-up)",
      ),
      3,
    );
    assert.equal(
      byLabel.get(
        `paper: ours ${name} naive at batch 16 (2 threads) / PyTorch 2 ` +
          "threads at batch 16, samples/s (like-for-like)",
      ),
      2,
    );
    assert.equal(
      byLabel.get(
        `paper: ours ${name} CAMDrop / ours ${name} naive, step time`,
      ),
      1.5,
    );
    // The only ceiling in the report is for 1 thread.
    assert.equal(values.some((r) => r.label.includes("sgemm 2")), false);
    // Each path's ratios name only that path.
    const other = name === "oneDNN" ? "OpenBLAS" : "oneDNN";
    assert.equal(values.some((r) => r.label.includes(other)), false);
  });
}

Deno.test("ratios of the webgpu step", () => {
  const values = ratios(report([
    measurement({
      implementation: "ours-webgpu",
      device: "nvidia, hopper",
      batchSize: 16,
      samplesPerSecond: 40,
      medianSeconds: 0.4,
    }),
    measurement({
      implementation: "ours-webgpu",
      method: "camdrop",
      batchSize: 16,
      medianSeconds: 0.5,
    }),
    measurement({
      implementation: "pytorch",
      threads: 2,
      batchSize: 16,
      samplesPerSecond: 5,
    }),
  ]));
  const byLabel = new Map(values.map((r) => [r.label, r.value]));
  assert.equal(
    byLabel.get(
      "paper: ours WebGPU naive / PyTorch CPU 2 thread(s), samples/s",
    ),
    8,
  );
  assert.equal(
    byLabel.get("paper: ours WebGPU CAMDrop / ours WebGPU naive, step time"),
    1.25,
  );
});

Deno.test("webgpu rows name the adapter and micro-batches", () => {
  const rows = tableRows(report([
    measurement({ implementation: "ours-webgpu", device: "nvidia, hopper" }),
    measurement({ batchSize: 16, microBatch: 8 }),
  ]));
  assert.equal(rows[1][1], "ours, tfjs webgpu (nvidia, hopper)");
  assert.equal(rows[2][4], "16 (8 x 2)");
});

Deno.test("GPU limitation depends on the adapter", () => {
  const software = markdownReport(report([
    measurement({ implementation: "ours-webgpu", device: "mesa, llvmpipe" }),
  ]));
  assert.match(software, /No GPU figure exists yet/);
  assert.match(software, /software or unnamed adapter \(mesa, llvmpipe\)/);
  const unnamed = markdownReport(report([
    measurement({ implementation: "ours-webgpu", device: "unknown adapter" }),
  ]));
  assert.match(unnamed, /No GPU figure exists yet/);
  const gpu = markdownReport(report([
    measurement({ implementation: "ours-webgpu", device: "nvidia, hopper" }),
  ]));
  assert.doesNotMatch(gpu, /No GPU figure/);
  assert.match(gpu, /The webgpu rows ran on nvidia, hopper\./);
});

Deno.test("markdownTable writes a header rule", () => {
  const table = markdownTable([["a", "b"], ["1", "2"]]);
  assert.equal(table, "| a | b |\n| --- | --- |\n| 1 | 2 |");
});

Deno.test("median of odd and even lists", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /empty/);
});
