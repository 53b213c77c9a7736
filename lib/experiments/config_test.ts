import assert from "node:assert/strict";
import { parseConfigYaml, resolveConfig } from "./config.ts";
import { strategyOptions } from "./run.ts";

Deno.test("resolveConfig() layers preset, file and flags", () => {
  const file = parseConfigYaml(
    "seed: 3\ntrain:\n  epochs: 7\n  lr: 0.05\nmodel:\n  fusion: sum\n",
    "test.yaml",
  );
  const config = resolveConfig("smoke", file, { train: { epochs: 5 } });
  assert.equal(config.train.epochs, 5); // flag beats file
  assert.equal(config.train.lr, 0.05); // file beats preset
  assert.equal(config.model.width, 4); // preset
  assert.equal(config.model.fusion, "sum");
  assert.equal(config.seed, 3);
  assert.equal(config.name, "embedded-sum-camdrop-r0.3-s3");
});

Deno.test("resolveConfig() rejects invalid values", () => {
  const cases: [Parameters<typeof resolveConfig>[1], RegExp][] = [
    [
      { camdrop: { rMax: 0 } },
      /Invalid r_max 0: expected a number in \(0, 1\)/,
    ],
    [{ camdrop: { rMax: 1.2 } }, /Invalid r_max 1.2/],
    [{ model: { fusion: "tensor" as never } }, /Invalid fusion "tensor"/],
    [{ method: "dropout" as never }, /Invalid method "dropout"/],
    [{ backend: "cuda" as never }, /Invalid backend "cuda"/],
    [{ train: { epochs: 0 } }, /Invalid epochs 0/],
    [{ train: { batchSize: 1 } }, /Invalid batch size 1/],
    [{ train: { lr: -1 } }, /Invalid learning rate -1/],
    [{ data: { dataset: "imagenet" as never } }, /Invalid dataset "imagenet"/],
    [
      { model: { fusion: "film", unimodal: "fusion-split" } },
      /concat and sum only/,
    ],
    [{ name: "../escape" }, /Invalid run name/],
  ];
  for (const [layer, pattern] of cases) {
    assert.throws(() => resolveConfig("default", layer), pattern);
  }
  assert.throws(() => resolveConfig("huge"), /Unknown preset "huge"/);
});

Deno.test("parseConfigYaml() names the file on bad input", () => {
  assert.throws(
    () => parseConfigYaml("train:\n  epochs: [1,\n", "bad.yaml"),
    /Invalid YAML in bad.yaml/,
  );
  assert.throws(
    () => parseConfigYaml("train:\n  epoch: 3\n", "typo.yaml"),
    /Invalid config typo.yaml: unknown key "train.epoch"/,
  );
  assert.throws(
    () => parseConfigYaml("train:\n  epochs: ten\n", "type.yaml"),
    /"train.epochs" must be a number/,
  );
  assert.throws(
    () => parseConfigYaml("- 1\n- 2\n", "list.yaml"),
    /expected a mapping/,
  );
  assert.deepEqual(parseConfigYaml("", "empty.yaml"), {});
});

Deno.test("strategyOptions() passes baseline sections", () => {
  const config = resolveConfig("smoke", {
    method: "opm",
    opm: { qBase: 0.3, mode: "spatial" },
    ogm: { alpha: 0.5, modulationEnd: 7 },
    pmr: { modulationEnd: -1 },
  });
  const options = strategyOptions(config);
  assert.equal(options.opm?.qBase, 0.3);
  assert.equal(options.opm?.mode, "spatial");
  assert.equal(options.ogm?.alpha, 0.5);
  assert.equal(options.ogm?.modulationEnd, 7);
  assert.equal(options.pmr?.modulationEnd, undefined, "-1 means scaled");
  assert.throws(
    () => resolveConfig("smoke", { opm: { mode: "channel" as never } }),
    /Invalid OPM mode "channel"/,
  );
});
