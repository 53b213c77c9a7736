import assert from "node:assert/strict";
import { join } from "node:path";
import { expandGrid, tableDefinition } from "./grids.ts";
import { reproduceTable } from "./reproduce.ts";

Deno.test("reproduceTable() rejects a finished foreign run", async () => {
  const out = await Deno.makeTempDir({ prefix: "camdrop-foreign-" });
  const definition = tableDefinition(4);
  const grid = expandGrid(definition, "smoke", [{ train: { epochs: 1 } }], {
    seeds: 1,
  });
  // A finished folder of the first run's name, trained with 2 epochs.
  const run = grid[0].config;
  const dir = join(out, run.name);
  await Deno.mkdir(dir);
  const foreign = structuredClone(run);
  foreign.train.epochs = 2;
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ config: foreign }),
  );
  await Deno.writeTextFile(join(dir, "metrics.csv"), "epoch,val_acc\n0,0.5\n");
  await Deno.writeTextFile(
    join(dir, "status.json"),
    JSON.stringify({ status: "complete" }),
  );

  await assert.rejects(
    () => reproduceTable(definition, grid, { outDir: out, seeds: 1 }),
    (error: Error) => {
      assert.match(error.message, /contains a finished run/);
      assert.match(error.message, /train\.epochs is 2 there, 1 here/);
      assert.match(error.message, /pass another --out folder/);
      return true;
    },
  );
  const written = [...Deno.readDirSync(out)].map((entry) => entry.name);
  assert.deepEqual(written, [run.name], "nothing trained or written");
  await Deno.remove(out, { recursive: true });
});
