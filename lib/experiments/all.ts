/**
 * The job of `deno task repro --all`. It plans every run behind the CAMDrop
 * paper's Tables 1, 3 and 4 and Figures 1, 3 and 4, trains each run once
 * however many outputs read it, and writes the outputs from the finished
 * runs.
 *
 * @module
 */

import { join } from "node:path";
import { figure1 } from "../plots/figure1.ts";
import { figure1Data } from "../plots/figure1_data.ts";
import { figure3 } from "../plots/figure3.ts";
import { figure4 } from "../plots/figure4.ts";
import {
  exportFigures,
  type ExportOptions,
  type FigureFormat,
  type NamedFigure,
} from "../plots/export.ts";
import { decodeCheckpoint, writeFileAtomic } from "../train/files.ts";
import {
  type ConfigOverrides,
  resolveConfig,
  type RunConfig,
} from "./config.ts";
import { runAll, type RunAllOptions } from "./parallel.ts";
import {
  buildModel,
  evaluateRunFolder,
  openDataset,
  readFinishedRun,
  type RunResult,
} from "./run.ts";
import { methodLabel } from "./tables.ts";
import {
  tableCsv,
  tableJson,
  tableLatex,
  tableMarkdown,
} from "./tables/format.ts";
import {
  expandGrid,
  type GridRun,
  gridRunName,
  TABLE_IDS,
  type TableDefinition,
  tableDefinition,
} from "./tables/grids.ts";
import { summarizeTable, type TableSummary } from "./tables/summary.ts";

/** r_max values of Figure 3's sweep, those of the CAMDrop paper. */
export const FIGURE3_R_MAX = [0.1, 0.2, 0.3, 0.4, 0.5] as const;

/** r_max of the CAMDrop run that Figures 1 and 4 show. */
const SHOWN_R_MAX = 0.3;

/** Masking ratio of both masks in the CAMDrop paper's Figure 1. */
const FIGURE1_RATIO = 0.2;

/**
 * Tables and figures of the CAMDrop paper that `--all` cannot make, with
 * the reason.
 */
export const UNAVAILABLE_OUTPUTS: readonly string[] = [
  "Table 2 (CAMDrop with the TBN and PSP backbones) is not available yet: " +
  "the toolkit has no TBN or PSP model.",
];

/** Every run of `--all` and which output reads which run. */
export interface AllPlan {
  /** Dataset of every run. */
  dataset: string;
  /** Seeds per cell and per r_max. */
  seeds: number;
  /** Each run once, in training order: the tables' grids first. */
  runs: RunConfig[];
  /** The three tables with their grids. */
  tables: { definition: TableDefinition; grid: GridRun[] }[];
  /** Run names of Figure 3: CAMDrop at each r_max, and naive fusion. */
  figure3: string[];
  /** Run names of Figure 4: naive fusion, then CAMDrop (seed 0). */
  figure4: [string, string];
  /** Run name whose best checkpoint Figure 1 explains (CAMDrop, seed 0). */
  figure1: string;
}

/**
 * Plans the runs of every table and figure for `preset` and `layers`
 * (config file and command-line values). Runs that two outputs share have
 * the same config and name (for example Table 3's SGD runs, Table 1's
 * concat runs and Figure 3's r_max 0.1, 0.3 and 0.5 points), and appear
 * once.
 * @throws {Error} On an invalid config or seed count, or when two outputs
 * would need different runs under one name.
 */
export function planAll(
  preset: string,
  layers: ConfigOverrides[],
  seeds = 3,
): AllPlan {
  const base = resolveConfig(preset, ...layers);
  const byName = new Map<string, RunConfig>();
  const add = (config: RunConfig): string => {
    const known = byName.get(config.name);
    if (known === undefined) {
      byName.set(config.name, config);
    } else if (JSON.stringify(known) !== JSON.stringify(config)) {
      throw new Error(
        `planAll: two outputs need different runs named "${config.name}".`,
      );
    }
    return config.name;
  };

  const tables = TABLE_IDS.map((id) => {
    const definition = tableDefinition(id);
    const grid = expandGrid(definition, preset, layers, { seeds });
    for (const run of grid) add(run.config);
    return { definition, grid };
  });

  const concat = (
    overrides: ConfigOverrides,
    seed: number,
  ): RunConfig => {
    const config = resolveConfig(preset, ...layers, overrides, {
      model: { fusion: "concat" },
      seed,
      name: "",
    });
    config.name = gridRunName(config, resolveConfig(preset));
    return config;
  };
  const figure3: string[] = [];
  for (const rMax of FIGURE3_R_MAX) {
    for (let seed = 0; seed < seeds; seed++) {
      figure3.push(
        add(concat({ method: "camdrop", camdrop: { rMax } }, seed)),
      );
    }
  }
  for (let seed = 0; seed < seeds; seed++) {
    figure3.push(add(concat({ method: "naive" }, seed)));
  }
  const naive = add(concat({ method: "naive" }, 0));
  const camdrop = add(
    concat({ method: "camdrop", camdrop: { rMax: SHOWN_R_MAX } }, 0),
  );
  return {
    dataset: base.data.dataset,
    seeds,
    runs: [...byName.values()],
    tables,
    figure3,
    figure4: [naive, camdrop],
    figure1: camdrop,
  };
}

/** Options of {@linkcode reproduceAll}. */
export interface AllOptions extends RunAllOptions {
  /** Folder of the tables and figures. */
  figuresDir: string;
  /** Figure formats; HTML is always written. @default all four */
  formats?: readonly FigureFormat[];
  /** Chromium and size options of the figure export. */
  exportOptions?: ExportOptions;
  /** Called before a finished run without `evaluation.json` is evaluated. */
  onEvaluateRun?: (dir: string) => void;
}

/** Runs and files of {@linkcode reproduceAll}. */
export interface AllResult {
  /** Every run of the plan, in plan order. */
  runs: RunResult[];
  /** Table files per table number: Markdown, CSV, LaTeX and JSON. */
  tables: Record<number, { summary: TableSummary; files: string[] }>;
  /** Figure files per figure name and format. */
  figures: Record<string, Partial<Record<FigureFormat, string>>>;
  /** Figure formats not written because Chromium is missing. */
  skippedFormats: FigureFormat[];
}

/**
 * Trains every run of `plan` that is not finished in `outDir` (`jobs` at a
 * time, unfinished ones resume), evaluates finished runs that lack
 * `evaluation.json`, and writes `table<N>.{md,csv,tex,json}` and
 * `figure<N>-<dataset>.<format>` into `figuresDir`. Figure 1 loads a
 * checkpoint in this thread, so a tfjs backend must be set up.
 * @throws {Error} If a run fails or a finished run folder contains
 * another config.
 */
export async function reproduceAll(
  plan: AllPlan,
  options: AllOptions,
): Promise<AllResult> {
  const runs = await runAll(plan.runs, options);
  return await writeAllOutputs(plan, runs, options);
}

/**
 * Writes the tables and figures of `plan` from finished runs only, for the
 * merge step after a cluster array job.
 * @throws {Error} Naming the runs that are not finished in `outDir`.
 */
export async function mergeAll(
  plan: AllPlan,
  options: AllOptions,
): Promise<AllResult> {
  const runs: RunResult[] = [];
  const missing: string[] = [];
  for (const config of plan.runs) {
    const run = await readFinishedRun(
      join(options.outDir, config.name),
      config,
    );
    if (run === undefined) missing.push(config.name);
    else runs.push(run);
  }
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} of ${plan.runs.length} runs are not finished in ` +
        `${options.outDir}: ${missing.slice(0, 5).join(", ")}` +
        `${missing.length > 5 ? ", ..." : ""}. Rerun their array tasks ` +
        `(or run the same command without --merge to train them here).`,
    );
  }
  return await writeAllOutputs(plan, runs, options);
}

async function writeAllOutputs(
  plan: AllPlan,
  runs: RunResult[],
  options: AllOptions,
): Promise<AllResult> {
  const byName = new Map(runs.map((run) => [run.config.name, run]));
  const run = (name: string): RunResult => byName.get(name)!;

  const tables: AllResult["tables"] = {};
  await Deno.mkdir(options.figuresDir, { recursive: true });
  for (const { definition, grid } of plan.tables) {
    const tableRuns = grid.map((cell) => run(cell.config.name));
    for (const tableRun of tableRuns) {
      if (tableRun.evaluation !== undefined) continue;
      options.onEvaluateRun?.(tableRun.dir);
      tableRun.evaluation = await evaluateRunFolder(
        tableRun.dir,
        options.evaluation,
      );
    }
    const summary = summarizeTable(definition, grid, tableRuns, plan.seeds);
    const stem = join(options.figuresDir, `table${definition.id}`);
    const files = [`${stem}.md`, `${stem}.csv`, `${stem}.tex`, `${stem}.json`];
    await writeFileAtomic(files[0], tableMarkdown(summary));
    await writeFileAtomic(files[1], tableCsv(summary));
    await writeFileAtomic(files[2], tableLatex(summary));
    await writeFileAtomic(files[3], tableJson(summary));
    tables[definition.id] = { summary, files };
  }

  const figures: NamedFigure[] = [
    {
      name: `figure1-${plan.dataset}`,
      figure: figure1(await figure1FromRun(run(plan.figure1).dir)),
      title: `Figure 1 (${plan.dataset})`,
    },
    {
      name: `figure3-${plan.dataset}`,
      figure: figure3(plan.figure3.map(run)),
      title: `Figure 3 (${plan.dataset})`,
    },
    {
      name: `figure4-${plan.dataset}`,
      figure: figure4(
        plan.figure4.map(run).map((shown) => ({
          label: methodLabel(shown),
          method: shown.config.method,
          metrics: shown.metrics,
        })),
        {
          title: `Unimodal test accuracy and imbalance, ${plan.dataset} data`,
        },
      ),
      title: `Figure 4 (${plan.dataset})`,
    },
  ];
  const exported = await exportFigures(
    figures,
    options.figuresDir,
    options.formats,
    {
      ...options.exportOptions,
      onWarning: options.exportOptions?.onWarning ??
        ((message) => options.onWarning?.(message, run(plan.figure1).config)),
    },
  );
  return {
    runs: plan.runs.map((config) => run(config.name)),
    tables,
    figures: exported.files,
    skippedFormats: exported.skipped,
  };
}

/**
 * Figure 1's arrays from a run's best checkpoint: the first test batch of
 * eight, three samples, masks at ratio 0.2.
 */
async function figure1FromRun(dir: string) {
  const record = JSON.parse(
    await Deno.readTextFile(join(dir, "config.json")),
  );
  const config: RunConfig = record.config;
  const path = join(dir, "best.ckpt");
  const { tensors } = decodeCheckpoint(await Deno.readFile(path), path);
  const dataset = await openDataset(config);
  const model = buildModel(config, dataset);
  try {
    model.store.restore(tensors);
    const [batch] = dataset.batches("test", {
      batchSize: 8,
      seed: config.seed,
      epoch: 0,
    });
    return figure1Data(model, dataset, batch, {
      samples: 3,
      ratio: FIGURE1_RATIO,
      seed: config.seed,
    });
  } finally {
    model.dispose();
  }
}
