/**
 * End-to-end tests of `deno task repro` and `deno task eval` as a user runs
 * them: one smoke-preset repro shared by the checks, plus the errors for
 * bad options and config files.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseMetricsCsv } from "../lib/metrics/frame.ts";
import { task } from "./_task.ts";

Deno.test("repro smoke run writes runs, tables and figure", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "camdrop-repro-" });
  const figures = join(out, "figures");
  const first = await task(
    "repro",
    "--preset",
    "smoke",
    "--out",
    out,
    "--figures",
    figures,
  );
  assert.equal(first.code, 0, first.stderr);
  const runs = ["embedded-concat-naive-s0", "embedded-concat-camdrop-r0.3-s0"];

  await t.step("metrics.csv has the documented columns", async () => {
    for (const run of runs) {
      const rows = parseMetricsCsv(
        await Deno.readTextFile(join(out, run, "metrics.csv")),
      );
      assert.equal(rows.length, 2, `${run}: one row per epoch`);
      for (
        const column of [
          "epoch",
          "lr",
          "train_loss",
          "train_acc",
          "train_rho_audio",
          "train_rho_visual",
          "train_mask_ratio_audio",
          "train_mask_ratio_visual",
          "val_acc",
          "val_audio_acc_probe",
          "val_visual_acc_probe",
          "val_imbalance_probe",
          "test_acc",
          "test_loss",
          "test_audio_acc_probe",
          "test_visual_acc_probe",
          "test_imbalance_probe",
          "seconds",
        ]
      ) {
        assert.equal(typeof rows[0][column], "number", `${run}: ${column}`);
      }
      const ratio = rows[1].train_mask_ratio_audio as number;
      if (run.includes("camdrop")) assert.ok(ratio > 0, "CAMDrop masks");
      else assert.equal(ratio, 0, "naive fusion never masks");
    }
  });

  await t.step("config.json records environment and data", async () => {
    const record = JSON.parse(
      await Deno.readTextFile(join(out, runs[1], "config.json")),
    );
    assert.equal(record.config.method, "camdrop");
    assert.equal(record.config.camdrop.rMax, 0.3);
    assert.match(record.data.hash, /^[0-9a-f]{64}$/);
    assert.equal(record.environment.backend, "wasm");
    assert.equal(record.environment.tfjs, "4.22.0");
    assert.equal(typeof record.environment.deno, "string");
    assert.equal(record.strategy.method, "camdrop");
    const status = JSON.parse(
      await Deno.readTextFile(join(out, runs[1], "status.json")),
    );
    assert.equal(status.status, "complete");
  });

  await t.step("tables and figure are written", async () => {
    const markdown = await Deno.readTextFile(join(out, "results.md"));
    assert.match(markdown, /\| Naive fusion \| concat \| 0 \|/);
    assert.match(markdown, /\| CAMDrop \(r_max 0.3\) \| concat \| 0 \|/);
    const csv = (await Deno.readTextFile(join(out, "results.csv"))).trim()
      .split("\n");
    assert.equal(csv.length, 3);
    assert.match(csv[0], /^method,fusion,seed,best_epoch,test_acc/);
    const html = await Deno.readTextFile(
      join(figures, "figure4-embedded.html"),
    );
    assert.match(html, /Plotly\.newPlot/);
    assert.match(html, /Imbalance ratio/);
    const bundle = await Deno.stat(join(figures, "plotly.js"));
    assert.ok(bundle.size > 1_000_000, "plotly.js is copied beside the page");
  });

  await t.step("eval reproduces the logged test accuracy", async () => {
    const result = await task("eval", join(out, runs[1]));
    assert.equal(result.code, 0, result.stderr);
    const measured = result.stdout.match(/^test accuracy: ([\d.]+)%/m)![1];
    const logged = result.stdout.match(/logged test accuracy: ([\d.]+)%/)![1];
    assert.equal(measured, logged);
  });

  await t.step("a second run reuses finished runs", async () => {
    const second = await task(
      "repro",
      "--preset",
      "smoke",
      "--out",
      out,
      "--figures",
      figures,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /reused finished run .*naive/);
    assert.match(second.stderr, /reused finished run .*camdrop/);
  });

  await Deno.remove(out, { recursive: true });
});

Deno.test("repro rejects bad options with one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-bad-" });
  const badYaml = join(dir, "bad.yaml");
  await Deno.writeTextFile(badYaml, "train:\n  epochs: [1,\n");
  const unknownKey = join(dir, "unknown.yaml");
  await Deno.writeTextFile(unknownKey, "model:\n  depth: 50\n");
  const cases: [string[], RegExp][] = [
    [["--r-max", "1.5"], /Invalid r_max 1.5: expected a number in \(0, 1\)/],
    [["--r-max", "abc"], /invalid --r-max "abc": expected a number/],
    [["--fusion", "tensor"], /Invalid fusion "tensor": expected one of/],
    [["--method", "dropout"], /Invalid method "dropout"/],
    [["--method", "naive,camdrop,naive"], /--method lists "naive" twice/],
    [["--backend", "cuda"], /Invalid backend "cuda"/],
    [["--preset", "huge"], /Unknown preset "huge"/],
    [["--config", badYaml], /Invalid YAML in .*bad.yaml/],
    [["--config", unknownKey], /unknown key "model.depth"/],
    [["--config", join(dir, "none.yaml")], /cannot read config file/],
    [["--bogus"], /Unknown option '--bogus'/],
    [["--jobs", "-1"], /invalid --jobs -1: expected an integer >= 1/],
    [["--figures", badYaml], /cannot use --figures .*bad\.yaml: File exists/],
  ];
  for (const [args, pattern] of cases) {
    const result = await task("repro", "--out", dir, ...args);
    assert.equal(result.code, 1, `${args.join(" ")} should fail`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line for ${args.join(" ")}`);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench checks --output before measuring", async () => {
  const result = await task(
    "bench",
    "--quick",
    "--write",
    "--output",
    "/nonexistent-camdrop/bench.md",
  );
  assert.equal(result.code, 1);
  assert.match(result.stderr, /folder \/nonexistent-camdrop does not exist/);
  assert.doesNotMatch(result.stderr, /sgemm|warm-up/);
});

Deno.test("eval names an unknown option", async () => {
  const result = await task("eval", "runs/x", "--bogus");
  assert.equal(result.code, 1);
  assert.match(result.stderr, /Unknown option '--bogus'/);
});

Deno.test("eval names a folder that is not a run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-eval-" });
  const result = await task("eval", dir);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /Cannot read .*config\.json/);
  await Deno.remove(dir, { recursive: true });
});
