/**
 * `deno task repro`: trains naive fusion and CAMDrop on the chosen data and
 * writes the results table and Figure 4. Run with --help for the options.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type AllPlan,
  type ConfigOverrides,
  expandGrid,
  type GridRun,
  mergeAll,
  METHODS,
  parseConfigYaml,
  planAll,
  reproduce,
  reproduceAll,
  reproduceTable,
  type ReproOptions,
  resolveConfig,
  runAll,
  type RunConfig,
  setupBackend,
  slurmFiles,
  type TableDefinition,
  tableDefinition,
  UNAVAILABLE_OUTPUTS,
} from "../lib/mod.ts";
import {
  fail,
  joinNegativeValues,
  parseNumber,
  ProgressBar,
  usageError,
  writeErr,
} from "./_cli.ts";

const HELP = `Usage: deno task repro [options]

Trains naive fusion and CAMDrop (same seed and model) and writes
<out>/<run>/ folders, <out>/results.md and .csv, and
<figures>/figure4-<dataset>.html. Finished runs in <out> are reused.

Values come from the preset, then --config, then the options below.

Options:
  --preset NAME      smoke | default | paper (default: default).
                     smoke: tiny model and data, about a minute on 2 cores.
                     default: embedded data, 20 epochs, about 15 minutes.
                     paper: full-width ResNet18, 100 epochs, batch 16.
  --config FILE      YAML file with sections seed, method, data, model,
                     camdrop and train (keys as in config.json).
  --dataset NAME     embedded | cremad | ave | ks | manifest (default:
                     embedded). The others are read from --data-root in
                     the layouts of docs/datasets.md.
  --data-root DIR    dataset folder, or the manifest CSV for manifest;
                     required for every dataset but embedded.
  --cache-dir DIR    cache of preprocessed spectrograms and frames for
                     on-disk datasets (default .cache/data; none turns
                     it off; deno task cache:clear empties it).
  --method LIST      comma-separated methods to train: naive, camdrop,
                     ogm, ogm-ge, opm, gb (Gradient-Blending), pmr
                     (default: naive,camdrop). Their options are set in the
                     --config file (sections camdrop, ogm, opm, gb, pmr).
  --fusion NAME      concat | sum | film | gated, or audio-only |
                     visual-only for unimodal baselines (default: concat).
  --r-max R          CAMDrop maximum masking ratio, in (0, 1) (default 0.3).
  --epochs N         training epochs (preset: smoke 2, default 20,
                     paper 100).
  --batch-size N     samples per training batch (default 16).
  --lr LR            initial learning rate (preset: smoke and default 0.01,
                     paper 0.001); decayed x0.1 at 70 % of the epochs.
  --optimizer NAME   sgd | adam (default sgd, momentum 0.9, weight decay
                     1e-4).
  --seed N           seed of data order, noise, initialisation and masks
                     (default 0).
  --micro-batch N    samples per micro-batch: gradients of micro-batches
                     are summed before one update, for batches that do
                     not fit in memory; "auto" picks one that fits the
                     wasm heap (paper preset: auto; others: 0 = off).
  --skip-missing     on-disk data: leave out samples whose media files are
                     missing (counted in config.json) instead of failing.
  --skip-nonfinite   skip a batch whose loss or gradient is NaN or
                     infinite (counted in train_skipped_batches) instead
                     of stopping the run.
  --backend NAME     auto | tensorflow | wasm | webgpu | cpu (default auto:
                     tfjs-node if importable, else wasm, else cpu).
  --jobs N           runs trained at the same time, one worker each
                     (default: the number of CPU cores, at most the
                     number of runs).
  --out DIR          folder for run folders and tables (default runs).
  --resume RUN_DIR   continue an unfinished run folder from its last
                     complete epoch, with the config it was started with
                     (rerunning the same command resumes unfinished runs
                     too).
  --figures DIR      folder for figures (default figures).
  --table N          train the grid of the paper's Table 1, 3 or 4
                     instead and write <out>/tableN.md, .csv, .tex and
                     .json (see docs/tables.md). The table sets method,
                     fusion and r_max per cell (Table 3 also the
                     optimizer, Table 4 batch size and learning rate);
                     --method and --fusion then keep only the listed
                     methods and fusions of the grid.
  --all              train every run behind Tables 1, 3 and 4 and Figures
                     1, 3 and 4 (each shared run once) and write the
                     tables and figures into --figures (see
                     docs/figures.md). Table 2 is not available.
  --merge            with --all: write the tables and figures from runs
                     already finished in --out, training nothing; fails
                     naming the unfinished runs.
  --task-index I     with --all: train only run I (from 0) of the plan,
                     as one task of a cluster array job.
  --emit slurm       with --all: write <out>/slurm/ with a Slurm array job
                     (one run per task), a merge job and submit.sh, and
                     train nothing.
  --seeds N          with --table or --all: seeds 0..N-1 per cell
                     (default 3).
  --noise-std S      std of the Gaussian noise of the noisy-modality
                     evaluation, in units of that input's std over the
                     test split (default 1).
  --help             show this text.
`;

const OPTIONS = {
  preset: { type: "string", default: "default" },
  config: { type: "string" },
  dataset: { type: "string" },
  "data-root": { type: "string" },
  "cache-dir": { type: "string" },
  method: { type: "string" },
  fusion: { type: "string" },
  "r-max": { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  lr: { type: "string" },
  optimizer: { type: "string" },
  seed: { type: "string" },
  "skip-nonfinite": { type: "boolean" },
  "skip-missing": { type: "boolean" },
  "micro-batch": { type: "string" },
  backend: { type: "string" },
  jobs: { type: "string" },
  out: { type: "string", default: "runs" },
  resume: { type: "string" },
  figures: { type: "string", default: "figures" },
  table: { type: "string" },
  seeds: { type: "string" },
  all: { type: "boolean", default: false },
  merge: { type: "boolean", default: false },
  "task-index": { type: "string" },
  emit: { type: "string" },
  "noise-std": { type: "string" },
  help: { type: "boolean", default: false },
} as const;

let parsed;
try {
  parsed = parseArgs({
    args: joinNegativeValues(Deno.args, OPTIONS),
    options: OPTIONS,
    allowPositionals: false,
  });
} catch (error) {
  fail(usageError(error));
}
const values = parsed.values;
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

// Config: preset, then YAML file, then command line.
const layers: ConfigOverrides[] = [];
if (values.config !== undefined) {
  let text: string;
  try {
    text = await Deno.readTextFile(values.config);
  } catch (error) {
    fail(
      `cannot read config file ${values.config}: ${(error as Error).message}`,
    );
  }
  try {
    layers.push(parseConfigYaml(text, values.config));
  } catch (error) {
    fail((error as Error).message);
  }
}
const cli: ConfigOverrides = { data: {}, model: {}, camdrop: {}, train: {} };
if (values.dataset !== undefined) {
  cli.data!.dataset = values.dataset as never;
}
if (values["data-root"] !== undefined) cli.data!.dataRoot = values["data-root"];
if (values["cache-dir"] !== undefined) cli.data!.cacheDir = values["cache-dir"];
// With --table, --fusion filters the grid instead.
if (values.fusion !== undefined && values.table === undefined) {
  cli.model!.fusion = values.fusion as never;
}
if (values["r-max"] !== undefined) {
  cli.camdrop!.rMax = parseNumber("--r-max", values["r-max"]);
}
if (values.epochs !== undefined) {
  cli.train!.epochs = parseNumber("--epochs", values.epochs);
}
if (values["batch-size"] !== undefined) {
  cli.train!.batchSize = parseNumber("--batch-size", values["batch-size"]);
}
if (values.lr !== undefined) cli.train!.lr = parseNumber("--lr", values.lr);
if (values.optimizer !== undefined) {
  cli.train!.optimizer = values.optimizer as never;
}
if (values.seed !== undefined) cli.seed = parseNumber("--seed", values.seed);
if (values["skip-nonfinite"]) cli.train!.nonFinite = "skip";
if (values["skip-missing"]) cli.data!.skipMissing = true;
if (values["micro-batch"] !== undefined) {
  cli.train!.microBatch = values["micro-batch"] === "auto"
    ? -1
    : parseNumber("--micro-batch", values["micro-batch"]);
}
if (values.backend !== undefined) cli.backend = values.backend as never;
layers.push(cli);

const methods = list(values.method ?? "naive,camdrop");
if (methods.length === 0) {
  fail(`--method is empty: expected ${METHODS.join(", ")}.`);
}
const repeated = methods.find((method, i) => methods.indexOf(method) !== i);
if (repeated !== undefined) {
  // Two runs of one method would share a run folder.
  fail(`--method lists "${repeated}" twice: give each method once.`);
}
if (
  values.seeds !== undefined && values.table === undefined && !values.all
) {
  fail("--seeds needs --table or --all; for a single run use --seed N.");
}
for (const option of ["merge", "task-index", "emit"] as const) {
  if (values[option] && !values.all) fail(`--${option} needs --all.`);
}
let configs: RunConfig[];
let outDir = values.out;
let table:
  | { definition: TableDefinition; grid: GridRun[]; seeds: number }
  | undefined;
let plan: AllPlan | undefined;
if (values.all) {
  plan = allPlan();
  configs = plan.runs;
  if (values.emit !== undefined) {
    await emitJobScript(plan);
    Deno.exit(0);
  }
  if (values["task-index"] !== undefined) {
    const index = parseNumber("--task-index", values["task-index"]);
    if (!Number.isInteger(index) || index < 0 || index >= plan.runs.length) {
      fail(
        `invalid --task-index ${index}: expected an integer from 0 to ` +
          `${plan.runs.length - 1} (the plan has ${plan.runs.length} runs).`,
      );
    }
    configs = [plan.runs[index]];
  }
} else if (values.table !== undefined) {
  table = tableGrid();
  configs = table.grid.map((run) => run.config);
} else if (values.resume !== undefined) {
  // The run's own config wins; other options are not applied.
  const path = join(values.resume, "config.json");
  try {
    configs = [JSON.parse(await Deno.readTextFile(path)).config];
  } catch (error) {
    fail(
      `cannot resume ${values.resume}: ${(error as Error).message}. Pass a ` +
        `run folder that holds config.json.`,
    );
  }
  outDir = dirname(values.resume);
  if (basename(values.resume) !== configs[0].name) {
    fail(
      `cannot resume ${values.resume}: its config names the run ` +
        `"${configs[0].name}"; rename the folder back to that name.`,
    );
  }
} else {
  try {
    configs = methods.map((method) =>
      resolveConfig(values.preset, ...layers, { method: method as never })
    );
  } catch (error) {
    fail((error as Error).message);
  }
}

const jobs = values.jobs !== undefined
  ? parseNumber("--jobs", values.jobs)
  : Math.min(configs.length, navigator.hardwareConcurrency ?? 1);
if (!Number.isInteger(jobs) || jobs < 1) {
  fail(`invalid --jobs ${jobs}: expected an integer >= 1.`);
}

const evaluation: { noiseStd?: number } = {};
if (values["noise-std"] !== undefined) {
  evaluation.noiseStd = parseNumber("--noise-std", values["noise-std"]);
  if (evaluation.noiseStd < 0) {
    fail(`invalid --noise-std ${evaluation.noiseStd}: expected a number >= 0.`);
  }
}

// Output folders, checked before any training so that a bad path does not
// cost a run.
for (
  const [option, folder] of [["--out", outDir], ["--figures", values.figures]]
) {
  try {
    await Deno.mkdir(folder, { recursive: true });
  } catch (error) {
    fail(
      `cannot use ${option} ${folder}: ${(error as Error).message}. Pass a ` +
        "folder that can be created and written.",
    );
  }
}

// Backend.
tf.enableProdMode();
const backend = await setupBackend(configs[0].backend, {
  onWarning: (message) => writeErr(`warning: ${message}\n`),
}).catch((error) => fail((error as Error).message));
writeErr(
  `backend: ${backend.name}${
    backend.fallbackReason ? ` (fallback: ${backend.fallbackReason})` : ""
  }\n`,
);
if (backend.name === "wasm") {
  const { blas } = backend;
  writeErr(
    blas.used
      ? `accelerated kernels: ${blas.config} (${blas.library}, ` +
        `${blas.threads} threads)\n`
      : `convolutions: plain wasm kernels (${blas.reason})\n`,
  );
}

// Ctrl-C: every complete epoch is already on disk (written atomically), so
// mark the unfinished runs and exit; rerunning resumes them.
const active = new Set<string>();
Deno.addSignalListener("SIGINT", () => {
  progress.clear();
  for (const name of active) {
    try {
      Deno.writeTextFileSync(
        join(outDir, name, "status.json"),
        JSON.stringify({ status: "interrupted" }) + "\n",
      );
    } catch {
      // The folder may not exist yet; nothing to mark then.
    }
    writeErr(
      `interrupted ${name}: resume with deno task repro --resume ` +
        `${join(outDir, name)}\n`,
    );
  }
  Deno.exit(130);
});

// Train and write results.
const progress = new ProgressBar();
const started = performance.now();
const trainOptions: Omit<ReproOptions, "figuresDir"> = {
  outDir,
  environment: { backendInfo: backend },
  evaluation,
  jobs,
  onRun: (config, index, count) => {
    progress.clear();
    active.add(config.name);
    writeErr(`run ${index + 1}/${count}: ${config.name}\n`);
  },
  onWarning: (message, config) => {
    // Every worker repeats the backend fallback already printed above.
    if (message.includes("'tensorflow' skipped")) return;
    progress.clear();
    writeErr(`warning (${config.name}): ${message}\n`);
  },
  onStart: ({ dir, parameters, resumedAt }) => {
    progress.clear();
    writeErr(
      `  folder ${dir}, ${parameters} parameters` +
        (resumedAt !== undefined ? `, resumed after epoch ${resumedAt}` : "") +
        "\n",
    );
  },
  onStep: (p) => progress.step(p, configs[0].train.epochs),
  onEpoch: (row, config) => {
    progress.clear();
    writeErr(
      `  ${config.name} epoch ${(row.epoch as number) + 1}/` +
        `${config.train.epochs} loss ${
          (row.train_loss as number).toFixed(3)
        } ` +
        `val ${pct(row.val_acc)} test ${pct(row.test_acc)} ` +
        `audio ${pct(row.test_audio_acc_probe)} ` +
        `visual ${pct(row.test_visual_acc_probe)} ` +
        `(${(row.seconds as number).toFixed(1)} s)\n`,
    );
    if ((row.epoch as number) + 1 === config.train.epochs) {
      progress.finish(config.name);
    }
  },
  // Evaluation follows the last epoch, so a run stays active until then.
  onRunDone: (_result, config) => active.delete(config.name),
};
try {
  if (plan !== undefined) {
    if (values["task-index"] !== undefined) {
      const [run] = await runAll(configs, { ...trainOptions, jobs: 1 });
      console.log(
        `run ${run.config.name}: best test accuracy ` +
          `${pct(run.best.test_acc)} (${run.dir})`,
      );
      Deno.exit(0);
    }
    const allOptions = {
      ...trainOptions,
      figuresDir: values.figures,
      onEvaluateRun: (dir: string) =>
        writeErr(`evaluating finished run ${dir}\n`),
      exportOptions: {
        onWarning: (message: string) => writeErr(`warning: ${message}\n`),
      },
    };
    const result = values.merge
      ? await mergeAll(plan, allOptions)
      : await reproduceAll(plan, allOptions);
    for (const run of result.runs) {
      if (run.reused && !values.merge) {
        writeErr(`reused finished run ${run.dir}\n`);
      }
    }
    for (const { files } of Object.values(result.tables)) {
      console.log(await Deno.readTextFile(files[0]));
    }
    for (const { files } of Object.values(result.tables)) {
      console.log(`table: ${files.join(", ")}`);
    }
    for (const files of Object.values(result.figures)) {
      console.log(`figure: ${Object.values(files).join(", ")}`);
    }
    for (const note of UNAVAILABLE_OUTPUTS) console.log(`note: ${note}`);
    console.log(
      `${result.runs.length} runs; done in ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    Deno.exit(0);
  }
  if (table !== undefined) {
    const result = await reproduceTable(table.definition, table.grid, {
      ...trainOptions,
      seeds: table.seeds,
      onEvaluateRun: (dir) => writeErr(`evaluating finished run ${dir}\n`),
    });
    for (const run of result.runs) {
      if (run.reused) writeErr(`reused finished run ${run.dir}\n`);
    }
    const { markdown, csv, latex, json } = result.files;
    console.log(await Deno.readTextFile(markdown));
    console.log(`tables: ${markdown}, ${csv}, ${latex}, ${json}`);
    console.log(
      `done in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    Deno.exit(0);
  }
  const result = await reproduce(configs, {
    ...trainOptions,
    figuresDir: values.figures,
  });
  for (const run of result.runs) {
    if (run.reused) writeErr(`reused finished run ${run.dir}\n`);
  }
  console.log(await Deno.readTextFile(result.tableMarkdown));
  console.log(`table: ${result.tableMarkdown}, ${result.tableCsv}`);
  console.log(`figure: ${result.figure}`);
  console.log(
    `done in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
} catch (error) {
  progress.clear();
  fail((error as Error).message);
}

function pct(value: unknown): string {
  return `${(100 * (value as number)).toFixed(1)}%`;
}

function list(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) =>
    item !== ""
  );
}

/**
 * Builds the plan of --all from the preset and `layers`.
 * Exits with an error for options that the tables and figures set per run.
 */
function allPlan(): AllPlan {
  const conflicts = [
    "table",
    "resume",
    "seed",
    "method",
    "fusion",
    "r-max",
    "optimizer",
    "batch-size",
    "lr",
  ] as const;
  for (const option of conflicts) {
    if (values[option] !== undefined) {
      fail(
        `--${option} cannot be combined with --all: the tables and figures ` +
          `set method, fusion, r_max, optimiser, batch size, learning rate ` +
          `and seeds per run.`,
      );
    }
  }
  if (values.emit !== undefined && values.emit !== "slurm") {
    fail(`invalid --emit "${values.emit}": expected slurm.`);
  }
  if (values.emit !== undefined && (values.merge || values["task-index"])) {
    fail("--emit cannot be combined with --merge or --task-index.");
  }
  if (values.merge && values["task-index"] !== undefined) {
    fail("--merge cannot be combined with --task-index.");
  }
  const seeds = values.seeds === undefined
    ? 3
    : parseNumber("--seeds", values.seeds);
  try {
    return planAll(values.preset, layers, seeds);
  } catch (error) {
    fail((error as Error).message);
  }
}

/**
 * Writes the Slurm array job of --emit slurm into <out>/slurm/ and prints
 * how to submit it. Each array task reruns this command line with
 * --task-index; the merge job reruns it with --merge.
 */
async function emitJobScript(plan: AllPlan): Promise<void> {
  const dir = join(outDir, "slurm");
  const command = forwardedArgs();
  let files: Record<string, string>;
  try {
    files = slurmFiles(plan, {
      root: resolve("."),
      dir: resolve(dir),
      args: command,
      preset: values.preset,
    });
  } catch (error) {
    fail((error as Error).message);
  }
  try {
    await Deno.mkdir(join(dir, "logs"), { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, name);
      await Deno.writeTextFile(`${path}.tmp`, text);
      await Deno.rename(`${path}.tmp`, path);
      if (name.endsWith(".sh")) await Deno.chmod(path, 0o755);
    }
  } catch (error) {
    fail(`cannot write ${dir}: ${(error as Error).message}`);
  }
  console.log(
    `wrote ${Object.keys(files).map((name) => join(dir, name)).join(", ")}`,
  );
  console.log(
    `${plan.runs.length} array tasks, one run each; submit with ` +
      `bash ${join(dir, "submit.sh")}`,
  );
}

/**
 * This command line without --emit and --jobs, with relative paths made
 * absolute so that the cluster job runs from any folder.
 */
function forwardedArgs(): string[] {
  const pathOptions = new Set([
    "--config",
    "--data-root",
    "--out",
    "--figures",
  ]);
  const dropped = new Set(["--emit", "--jobs"]);
  const switches = new Set(["--all", "--skip-missing", "--skip-nonfinite"]);
  const args: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) {
    const arg = Deno.args[i];
    const equals = arg.indexOf("=");
    const flag = equals < 0 ? arg : arg.slice(0, equals);
    let value = equals < 0 ? undefined : arg.slice(equals + 1);
    if (value === undefined && !switches.has(flag)) value = Deno.args[++i];
    if (dropped.has(flag)) continue;
    const isPath = pathOptions.has(flag) ||
      (flag === "--cache-dir" && value !== "none");
    if (isPath && value !== undefined) value = resolve(value);
    args.push(flag);
    if (value !== undefined) args.push(value);
  }
  if (!args.includes("--out")) args.push("--out", resolve(outDir));
  if (!args.includes("--figures")) {
    args.push("--figures", resolve(values.figures));
  }
  return args;
}

/**
 * Builds the grid of --table from the preset and `layers`, with --method
 * and --fusion as filters.
 * Exits with an error for options that the table sets per cell.
 */
function tableGrid(): {
  definition: TableDefinition;
  grid: GridRun[];
  seeds: number;
} {
  if (values.resume !== undefined) {
    fail(
      "--resume cannot be combined with --table: rerun the same --table " +
        "command, which resumes its unfinished runs.",
    );
  }
  if (values.seed !== undefined) {
    fail("--seed cannot be combined with --table: use --seeds N.");
  }
  let definition: TableDefinition;
  try {
    definition = tableDefinition(parseNumber("--table", values.table!));
  } catch (error) {
    fail((error as Error).message);
  }
  // Options whose config value the table sets per cell.
  const cellOptions = {
    "r-max": "camdrop.rMax",
    optimizer: "train.optimizer",
    "batch-size": "train.batchSize",
    lr: "train.lr",
  } as const;
  for (const [option, path] of Object.entries(cellOptions)) {
    if (
      values[option as keyof typeof cellOptions] !== undefined &&
      definition.varies.includes(path)
    ) {
      fail(
        `--${option} cannot be combined with --table ${definition.id}: the ` +
          `table sets ${path} per cell.`,
      );
    }
  }
  const seeds = values.seeds === undefined
    ? 3
    : parseNumber("--seeds", values.seeds);
  try {
    const grid = expandGrid(definition, values.preset, layers, {
      seeds,
      methods: values.method === undefined ? undefined : methods,
      fusions: values.fusion === undefined ? undefined : list(values.fusion),
    });
    return { definition, grid, seeds };
  } catch (error) {
    fail((error as Error).message);
  }
}
