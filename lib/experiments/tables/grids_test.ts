import assert from "node:assert/strict";
import { defaultRunName } from "../config.ts";
import {
  expandGrid,
  SPANNING_COLUMN,
  TABLE_IDS,
  tableDefinition,
} from "./grids.ts";
import { PAPER_DATASETS, PAPER_RESULTS, paperAccuracy } from "./paper.ts";

Deno.test("expandGrid() covers the full Table 1 grid", () => {
  const table = tableDefinition(1);
  const runs = expandGrid(table, "smoke", [], { seeds: 1 });
  assert.equal(runs.length, 3 * 8 + 2);

  const seen = new Set(runs.map((run) => {
    const { method, camdrop, model } = run.config;
    const rMax = method === "camdrop" ? camdrop.rMax : "-";
    return `${method}/${rMax}/${model.fusion}`;
  }));
  for (const fusion of ["concat", "sum", "film"]) {
    for (const method of ["naive", "gb", "ogm-ge", "opm", "pmr"]) {
      assert.ok(seen.has(`${method}/-/${fusion}`), `${method} ${fusion}`);
    }
    for (const rMax of [0.1, 0.3, 0.5]) {
      assert.ok(seen.has(`camdrop/${rMax}/${fusion}`), `r ${rMax} ${fusion}`);
    }
  }
  assert.ok(seen.has("naive/-/audio-only"), "audio-only row");
  assert.ok(seen.has("naive/-/visual-only"), "visual-only row");
  const unimodal = runs.filter((run) => run.column === SPANNING_COLUMN);
  assert.deepEqual(unimodal.map((run) => run.row), [
    "audio-only",
    "visual-only",
  ]);
  for (const run of runs) {
    assert.equal(run.config.preset, "smoke");
    assert.equal(run.config.train.epochs, 2, "the preset's epochs");
    assert.equal(run.config.name, defaultRunName(run.config));
  }
});

Deno.test("expandGrid() gives each seed its own run", () => {
  const runs = expandGrid(tableDefinition(1), "smoke", [], { seeds: 3 });
  assert.equal(runs.length, 26 * 3);
  const names = new Set(runs.map((run) => run.config.name));
  assert.equal(names.size, runs.length, "names are unique");
  assert.deepEqual(
    [...new Set(runs.map((run) => run.seed))],
    [0, 1, 2],
  );
  for (const run of runs) assert.equal(run.config.seed, run.seed);
  assert.ok(names.has("embedded-film-camdrop-r0.5-s2"));
});

Deno.test("expandGrid() defaults to three seeds", () => {
  const runs = expandGrid(tableDefinition(4), "smoke", []);
  assert.equal(runs.length, 4 * 3);
});

Deno.test("expandGrid() keeps layers the table leaves alone", () => {
  const runs = expandGrid(tableDefinition(1), "smoke", [
    { train: { epochs: 1 }, model: { fusion: "gated" }, method: "pmr" },
  ], { seeds: 1 });
  for (const run of runs) assert.equal(run.config.train.epochs, 1);
  // The table sets method and fusion per cell.
  assert.ok(runs.every((run) => run.config.model.fusion !== "gated"));
  assert.equal(runs.filter((run) => run.config.method === "pmr").length, 3);
});

Deno.test("expandGrid() shares Table 3's SGD runs with Table 1", () => {
  const table1 = expandGrid(tableDefinition(1), "default", [], { seeds: 1 });
  const table3 = expandGrid(tableDefinition(3), "default", [], { seeds: 1 });
  const names = table3.map((run) => run.config.name);
  assert.deepEqual(names, [
    "embedded-concat-naive-s0",
    "embedded-concat-naive-s0-adam",
    "embedded-concat-camdrop-r0.3-s0",
    "embedded-concat-camdrop-r0.3-s0-adam",
  ]);
  for (const run of table3) {
    assert.equal(run.config.model.fusion, "concat");
    assert.equal(run.config.train.lr, 0.01, "the preset's learning rate");
    const shared = table1.find((other) =>
      other.config.name === run.config.name
    );
    if (run.config.train.optimizer === "sgd") {
      assert.deepEqual(shared?.config, run.config, run.config.name);
    } else {
      assert.equal(shared, undefined);
    }
  }
});

Deno.test("expandGrid() uses Table 4's settings as listed", () => {
  const runs = expandGrid(tableDefinition(4), "smoke", [
    { train: { lr: 0.05, batchSize: 8 } },
  ], { seeds: 1 });
  const settings = runs.map((run) => [
    run.config.train.batchSize,
    run.config.train.lr,
  ]);
  assert.deepEqual(settings, [[16, 1e-3], [64, 1e-3], [16, 5e-4], [16, 1e-4]]);
  assert.deepEqual(runs.map((run) => run.config.name), [
    "embedded-concat-camdrop-r0.3-s0-lr0.001",
    "embedded-concat-camdrop-r0.3-s0-b64-lr0.001",
    "embedded-concat-camdrop-r0.3-s0-lr0.0005",
    "embedded-concat-camdrop-r0.3-s0-lr0.0001",
  ]);
  for (const run of runs) {
    assert.equal(run.config.method, "camdrop");
    assert.equal(run.config.camdrop.rMax, 0.3);
  }
  // Under the paper preset (batch 16, lr 1e-3) the first setting is the
  // preset itself and needs no suffix.
  const paper = expandGrid(tableDefinition(4), "paper", [], { seeds: 1 });
  assert.equal(paper[0].config.name, "embedded-concat-camdrop-r0.3-s0");
});

Deno.test("expandGrid() filters by method and fusion", () => {
  const runs = expandGrid(tableDefinition(1), "smoke", [], {
    seeds: 1,
    methods: ["naive", "camdrop"],
    fusions: ["concat", "audio-only"],
  });
  assert.deepEqual(runs.map((run) => run.config.name), [
    "embedded-concat-naive-s0",
    "embedded-concat-camdrop-r0.1-s0",
    "embedded-concat-camdrop-r0.3-s0",
    "embedded-concat-camdrop-r0.5-s0",
    "embedded-audio-only-naive-s0",
  ]);
});

Deno.test("expandGrid() rejects invalid options", () => {
  const table = tableDefinition(1);
  assert.throws(
    () => expandGrid(table, "smoke", [], { seeds: 0 }),
    /Invalid seed count 0: expected an integer >= 1/,
  );
  assert.throws(
    () => expandGrid(table, "smoke", [], { methods: ["dropout"] }),
    /Invalid method filter "dropout": expected one of naive/,
  );
  assert.throws(
    () => expandGrid(table, "smoke", [], { fusions: ["tensor"] }),
    /Invalid fusion filter "tensor"/,
  );
  assert.throws(
    () => expandGrid(table, "smoke", [], { fusions: ["gated"] }),
    /No runs of table 1 are left after the method and fusion filters/,
  );
  assert.throws(() => expandGrid(table, "huge", []), /Unknown preset "huge"/);
  assert.throws(
    () => tableDefinition(2),
    /Unknown table 2: expected one of 1, 3, 4/,
  );
});

Deno.test("paperAccuracy() returns the paper's cells", () => {
  assert.equal(paperAccuracy(1, "cremad", "camdrop-r0.3", "concat"), 63.8);
  assert.equal(paperAccuracy(1, "ks", "ogm-ge", "film"), 52.3);
  assert.equal(paperAccuracy(1, "ave", "audio-only", SPANNING_COLUMN), 55.0);
  assert.equal(paperAccuracy(1, "ave", "pmr", "concat"), undefined);
  assert.equal(paperAccuracy(3, "ks", "camdrop", "adam"), 53.7);
  assert.equal(paperAccuracy(4, "cremad", "b64-lr0.001", "camdrop"), 59.8);
  assert.equal(paperAccuracy(1, "embedded", "naive", "concat"), undefined);
});

Deno.test("paper numbers use the grids' keys", () => {
  for (const id of TABLE_IDS) {
    const table = tableDefinition(id);
    const cells = new Set(table.cells.map((c) => `${c.row}/${c.column}`));
    for (const dataset of PAPER_DATASETS) {
      const values = PAPER_RESULTS[id][dataset];
      let count = 0;
      for (const [row, columns] of Object.entries(values)) {
        for (const column of Object.keys(columns)) {
          assert.ok(cells.has(`${row}/${column}`), `${id} ${row}/${column}`);
          count++;
        }
      }
      // Every cell has a value, except PMR outside CREMA-D.
      const missing = id === 1 && dataset !== "cremad" ? 3 : 0;
      assert.equal(count, table.cells.length - missing, `${id} ${dataset}`);
    }
  }
});
