/**
 * Run grids of the CAMDrop paper's Tables 1, 3 and 4: which method, fusion,
 * optimiser, batch size and learning rate each table cell trains, and the
 * expansion of a table into one run config per cell and seed.
 *
 * @module
 */

import { METHODS } from "../../balance/registry.ts";
import { FUSIONS } from "../../models/fusion.ts";
import {
  type ConfigOverrides,
  defaultRunName,
  resolveConfig,
  type RunConfig,
} from "../config.ts";

/** Tables with a run grid. */
export const TABLE_IDS = [1, 3, 4] as const;

/** A table number. */
export type TableId = typeof TABLE_IDS[number];

/** Column key of a row whose single cell spans every column. */
export const SPANNING_COLUMN = "all";

/** A column or row of a table. */
export interface TableAxis {
  /** Key used in file names, JSON and the paper's numbers. */
  key: string;
  /** Label shown in the table. */
  label: string;
}

/** A row of a table. */
export interface TableRow extends TableAxis {
  /**
   * The row has one cell under {@linkcode SPANNING_COLUMN} that spans all
   * columns (the unimodal rows of Table 1, which have no fusion).
   */
  spansColumns?: boolean;
}

/** One cell: the config values it trains with. */
export interface TableCell {
  /** Row key. */
  row: string;
  /** Column key, or {@linkcode SPANNING_COLUMN}. */
  column: string;
  /** Values that override the preset, the config file and the options. */
  overrides: ConfigOverrides;
}

/** A table's layout and grid. */
export interface TableDefinition {
  /** Table number. */
  id: TableId;
  /** Title, used as the Markdown heading and the LaTeX caption. */
  title: string;
  /** Header of the row-label column. */
  rowHeader: string;
  /** Rows in display order. */
  rows: TableRow[];
  /** Columns in display order. */
  columns: TableAxis[];
  /** Cells in row order, then column order. */
  cells: TableCell[];
  /**
   * Config paths such as "train.lr" that the cells set; values given for
   * them elsewhere are overridden.
   */
  varies: string[];
}

const TABLE1_METHODS: {
  key: string;
  label: string;
  overrides: ConfigOverrides;
}[] = [
  { key: "naive", label: "Naive fusion", overrides: { method: "naive" } },
  { key: "gb", label: "Gradient-Blending", overrides: { method: "gb" } },
  { key: "ogm-ge", label: "OGM-GE", overrides: { method: "ogm-ge" } },
  { key: "opm", label: "OPM", overrides: { method: "opm" } },
  { key: "pmr", label: "PMR", overrides: { method: "pmr" } },
  ...[0.1, 0.3, 0.5].map((rMax) => ({
    key: `camdrop-r${rMax}`,
    label: `CAMDrop (r_max ${rMax})`,
    overrides: { method: "camdrop", camdrop: { rMax } } as ConfigOverrides,
  })),
];

const TABLE1_FUSIONS: TableAxis[] = [
  { key: "concat", label: "Concat" },
  { key: "sum", label: "Sum" },
  { key: "film", label: "FiLM" },
];

/** r_max of CAMDrop in Tables 3 and 4, the CAMDrop paper's default. */
const DEFAULT_R_MAX = 0.3;

/**
 * Table 4's (batch size, learning rate) settings, used exactly as listed
 * whatever the preset's learning rate (the smoke and default presets use
 * 0.01).
 */
export const TABLE4_SETTINGS = [
  { batchSize: 16, lr: 1e-3 },
  { batchSize: 64, lr: 1e-3 },
  { batchSize: 16, lr: 5e-4 },
  { batchSize: 16, lr: 1e-4 },
] as const;

/**
 * Returns the layout and grid of one table:
 *
 * - 1: methods (naive, Gradient-Blending, OGM-GE, OPM, PMR, CAMDrop at
 *   r_max 0.1, 0.3 and 0.5) by fusion (concat, sum, FiLM), plus audio-only
 *   and visual-only rows (naive training, one cell each);
 * - 3: naive fusion and CAMDrop (r_max 0.3) by optimiser (SGD, Adam),
 *   concat fusion, the preset's learning rate;
 * - 4: CAMDrop (r_max 0.3, concat) at each of
 *   {@linkcode TABLE4_SETTINGS}.
 * @throws {Error} For a table number without a grid.
 */
export function tableDefinition(id: number): TableDefinition {
  switch (id) {
    case 1:
      return table1();
    case 3:
      return table3();
    case 4:
      return table4();
    default:
      throw new Error(
        `Unknown table ${id}: expected one of ${TABLE_IDS.join(", ")}.`,
      );
  }
}

function table1(): TableDefinition {
  const cells: TableCell[] = [];
  for (const method of TABLE1_METHODS) {
    for (const fusion of TABLE1_FUSIONS) {
      cells.push({
        row: method.key,
        column: fusion.key,
        overrides: {
          ...method.overrides,
          model: { fusion: fusion.key as RunConfig["model"]["fusion"] },
        },
      });
    }
  }
  const unimodal: TableRow[] = [
    { key: "audio-only", label: "Audio only", spansColumns: true },
    { key: "visual-only", label: "Visual only", spansColumns: true },
  ];
  for (const row of unimodal) {
    cells.push({
      row: row.key,
      column: SPANNING_COLUMN,
      overrides: {
        method: "naive",
        model: { fusion: row.key as RunConfig["model"]["fusion"] },
      },
    });
  }
  return {
    id: 1,
    title: "Table 1: test accuracy (%) by balancing method and fusion",
    rowHeader: "Method",
    rows: [
      ...TABLE1_METHODS.map(({ key, label }) => ({ key, label })),
      ...unimodal,
    ],
    columns: TABLE1_FUSIONS,
    cells,
    varies: ["method", "model.fusion", "camdrop.rMax"],
  };
}

function table3(): TableDefinition {
  const rows: TableRow[] = [
    { key: "naive", label: "Naive fusion" },
    { key: "camdrop", label: `CAMDrop (r_max ${DEFAULT_R_MAX})` },
  ];
  const columns: TableAxis[] = [
    { key: "sgd", label: "SGD" },
    { key: "adam", label: "Adam" },
  ];
  const cells: TableCell[] = [];
  for (const row of rows) {
    for (const column of columns) {
      cells.push({
        row: row.key,
        column: column.key,
        overrides: {
          method: row.key as RunConfig["method"],
          model: { fusion: "concat" },
          camdrop: { rMax: DEFAULT_R_MAX },
          train: { optimizer: column.key as RunConfig["train"]["optimizer"] },
        },
      });
    }
  }
  return {
    id: 3,
    title: "Table 3: test accuracy (%) by optimiser, concat fusion",
    rowHeader: "Method",
    rows,
    columns,
    cells,
    varies: ["method", "model.fusion", "camdrop.rMax", "train.optimizer"],
  };
}

function table4(): TableDefinition {
  const rows: TableRow[] = TABLE4_SETTINGS.map(({ batchSize, lr }) => ({
    key: `b${batchSize}-lr${lr}`,
    label: `batch ${batchSize}, lr ${lr}`,
  }));
  const cells: TableCell[] = TABLE4_SETTINGS.map(({ batchSize, lr }, i) => ({
    row: rows[i].key,
    column: "camdrop",
    overrides: {
      method: "camdrop",
      model: { fusion: "concat" },
      camdrop: { rMax: DEFAULT_R_MAX },
      train: { batchSize, lr },
    },
  }));
  return {
    id: 4,
    title:
      "Table 4: CAMDrop test accuracy (%) by batch size and learning rate, " +
      "concat fusion",
    rowHeader: "Setting",
    rows,
    columns: [{ key: "camdrop", label: `CAMDrop (r_max ${DEFAULT_R_MAX})` }],
    cells,
    varies: [
      "method",
      "model.fusion",
      "camdrop.rMax",
      "train.batchSize",
      "train.lr",
    ],
  };
}

/** One run of a table grid. */
export interface GridRun {
  /** Row key. */
  row: string;
  /** Column key, or {@linkcode SPANNING_COLUMN}. */
  column: string;
  /** Seed, from 0. */
  seed: number;
  /** Resolved config; its name is unique within the grid. */
  config: RunConfig;
}

/** Options of {@linkcode expandGrid}. */
export interface GridOptions {
  /** Seeds 0..seeds-1 per cell. @default 3 */
  seeds?: number;
  /** Keep only cells that train one of these methods. Default: all. */
  methods?: readonly string[];
  /** Keep only cells with one of these fusions. Default: all. */
  fusions?: readonly string[];
}

/**
 * Expands a table into one config per cell and seed. Each config is the
 * preset, then `layers` (config file and command-line values), then the
 * cell's overrides and the seed. Run names are
 * {@linkcode defaultRunName} plus `-adam`, `-b<batch>` or `-lr<lr>` where
 * the optimiser, batch size or learning rate differ from the preset's, so
 * a cell shared by two tables (Table 3's SGD runs are Table 1's concat
 * runs) is trained once.
 * @throws {Error} On an invalid config, seed count or filter, or when the
 * filters leave no run.
 */
export function expandGrid(
  table: TableDefinition,
  preset: string,
  layers: ConfigOverrides[],
  options: GridOptions = {},
): GridRun[] {
  const seeds = options.seeds ?? 3;
  if (!Number.isInteger(seeds) || seeds < 1) {
    throw new Error(`Invalid seed count ${seeds}: expected an integer >= 1.`);
  }
  checkFilter("method", options.methods, METHODS);
  checkFilter("fusion", options.fusions, FUSIONS);
  const base = resolveConfig(preset);
  const runs: GridRun[] = [];
  const names = new Set<string>();
  for (const cell of table.cells) {
    for (let seed = 0; seed < seeds; seed++) {
      const config = resolveConfig(preset, ...layers, cell.overrides, {
        seed,
        name: "",
      });
      if (options.methods && !options.methods.includes(config.method)) {
        continue;
      }
      if (options.fusions && !options.fusions.includes(config.model.fusion)) {
        continue;
      }
      config.name = gridRunName(config, base);
      if (names.has(config.name)) {
        throw new Error(
          `Table ${table.id} has two runs named "${config.name}"; each ` +
            `cell and seed needs its own run folder.`,
        );
      }
      names.add(config.name);
      runs.push({ row: cell.row, column: cell.column, seed, config });
    }
  }
  if (runs.length === 0) {
    throw new Error(
      `No runs of table ${table.id} are left after the method and fusion ` +
        `filters; list methods and fusions that the table trains.`,
    );
  }
  return runs;
}

/**
 * Derives a run name from {@linkcode defaultRunName} and the training
 * settings that differ from `base` (the preset's config).
 */
export function gridRunName(config: RunConfig, base: RunConfig): string {
  let name = defaultRunName(config);
  if (config.train.optimizer !== base.train.optimizer) {
    name += `-${config.train.optimizer}`;
  }
  if (config.train.batchSize !== base.train.batchSize) {
    name += `-b${config.train.batchSize}`;
  }
  if (config.train.lr !== base.train.lr) name += `-lr${config.train.lr}`;
  return name;
}

function checkFilter(
  what: string,
  values: readonly string[] | undefined,
  allowed: readonly string[],
): void {
  if (values === undefined) return;
  for (const value of values) {
    if (!allowed.includes(value)) {
      throw new Error(
        `Invalid ${what} filter "${value}": expected one of ` +
          `${allowed.join(", ")}.`,
      );
    }
  }
}
