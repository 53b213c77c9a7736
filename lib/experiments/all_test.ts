import assert from "node:assert/strict";
import { FIGURE3_R_MAX, planAll } from "./all.ts";
import { resolveConfig } from "./config.ts";

Deno.test("planAll() trains each shared run once", () => {
  const plan = planAll("smoke", [], 1);
  const names = plan.runs.map((config) => config.name);
  assert.equal(new Set(names).size, names.length, "names are unique");
  // Table 1: 26; Table 3 adds Adam for naive and CAMDrop; Table 4 adds
  // four (batch, lr) settings that differ from the preset's; Figure 3
  // adds r_max 0.2 and 0.4.
  assert.equal(plan.runs.length, 26 + 2 + 4 + 2);
  for (
    const name of [
      "embedded-concat-naive-s0",
      "embedded-concat-camdrop-r0.3-s0",
      "embedded-concat-naive-s0-adam",
      "embedded-concat-camdrop-r0.3-s0-lr0.001",
      "embedded-concat-camdrop-r0.3-s0-b64-lr0.001",
      "embedded-concat-camdrop-r0.2-s0",
      "embedded-concat-camdrop-r0.4-s0",
    ]
  ) {
    assert.ok(names.includes(name), name);
  }
  assert.deepEqual(plan.figure4, [
    "embedded-concat-naive-s0",
    "embedded-concat-camdrop-r0.3-s0",
  ]);
  assert.equal(plan.figure1, "embedded-concat-camdrop-r0.3-s0");
  assert.deepEqual(plan.tables.map((t) => t.definition.id), [1, 3, 4]);
  // Every name an output reads is planned.
  const outputs = [
    ...plan.tables.flatMap((t) => t.grid.map((run) => run.config.name)),
    ...plan.figure3,
    ...plan.figure4,
    plan.figure1,
  ];
  for (const name of outputs) assert.ok(names.includes(name), name);
});

Deno.test("planAll() sweeps r_max over every seed for Figure 3", () => {
  const plan = planAll("smoke", [], 2);
  assert.equal(plan.seeds, 2);
  assert.equal(plan.figure3.length, (FIGURE3_R_MAX.length + 1) * 2);
  const byName = new Map(plan.runs.map((config) => [config.name, config]));
  const points = plan.figure3.map((name) => {
    const config = byName.get(name)!;
    assert.equal(config.model.fusion, "concat", name);
    return config.method === "camdrop"
      ? `${config.camdrop.rMax}/${config.seed}`
      : `naive/${config.seed}`;
  });
  assert.deepEqual(points.sort(), [
    "0.1/0",
    "0.1/1",
    "0.2/0",
    "0.2/1",
    "0.3/0",
    "0.3/1",
    "0.4/0",
    "0.4/1",
    "0.5/0",
    "0.5/1",
    "naive/0",
    "naive/1",
  ]);
  assert.equal(plan.runs.length, 2 * (26 + 2 + 4 + 2));
});

Deno.test("planAll() applies config layers to every run", () => {
  const plan = planAll(
    "smoke",
    [{ train: { epochs: 1 }, model: { width: 2 } }],
    1,
  );
  for (const config of plan.runs) {
    assert.equal(config.train.epochs, 1, config.name);
    assert.equal(config.model.width, 2, config.name);
  }
  // Table 4 keeps its own learning rates whatever the layers set.
  const lrs = plan.tables[2].grid.map((run) => run.config.train.lr);
  assert.deepEqual(lrs, [1e-3, 1e-3, 5e-4, 1e-4]);
  // Runs of the preset's own settings keep the plain run name, so
  // `deno task repro` and `--all` share them.
  const plain = resolveConfig("smoke", { method: "naive" });
  assert.ok(plan.runs.some((config) => config.name === plain.name));
});

Deno.test("planAll() rejects a bad seed count and config", () => {
  assert.throws(() => planAll("smoke", [], 0), /Invalid seed count 0/);
  assert.throws(
    () => planAll("smoke", [{ train: { epochs: -1 } }], 1),
    /epochs/,
  );
  assert.throws(() => planAll("huge", [], 1), /huge/);
});
