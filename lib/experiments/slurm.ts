/**
 * Slurm job scripts for `deno task repro --all --emit slurm`: an array job
 * with one training run per task, a merge job that writes the tables and
 * figures once every task has finished, and a submit script that chains
 * the two.
 *
 * @module
 */

import type { AllPlan } from "./all.ts";

/** Options of {@linkcode slurmFiles}. */
export interface SlurmOptions {
  /** Absolute path of the toolkit's repository, where tasks run. */
  root: string;
  /** Absolute path of the folder the scripts are written into. */
  dir: string;
  /**
   * Arguments of `deno task repro` shared by every task, with absolute
   * paths; `--task-index` or `--merge` is appended.
   */
  args: string[];
  /** Preset name, for the default time and memory limits. */
  preset: string;
}

/** Time and memory requested per task, by preset; edit to suit a cluster. */
const LIMITS: Record<string, { time: string; mem: string }> = {
  smoke: { time: "00:15:00", mem: "4G" },
  default: { time: "02:00:00", mem: "4G" },
  paper: { time: "7-00:00:00", mem: "16G" },
};

/** File names written by {@linkcode slurmFiles}, in a fixed order. */
export const SLURM_FILES = [
  "camdrop-all.sbatch",
  "camdrop-merge.sbatch",
  "submit.sh",
  "runs.tsv",
] as const;

/**
 * Returns the text of each job file by name. The files are the array job
 * (task i trains run i of `plan`), the merge job, `submit.sh` (it submits
 * the merge job to start once every array task succeeded) and `runs.tsv`
 * (task index and run name).
 * @throws {Error} If `plan` has no runs or a path is not absolute.
 */
export function slurmFiles(
  plan: AllPlan,
  options: SlurmOptions,
): Record<typeof SLURM_FILES[number], string> {
  if (plan.runs.length === 0) {
    throw new Error("slurmFiles: the plan has no runs.");
  }
  for (const path of [options.root, options.dir]) {
    if (!path.startsWith("/")) {
      throw new Error(`slurmFiles: "${path}" is not an absolute path.`);
    }
  }
  const limits = LIMITS[options.preset] ?? LIMITS.default;
  const command = ["npx", "-y", "deno", "task", "repro", ...options.args]
    .map(shellQuote).join(" ");
  const logs = `${options.dir}/logs`;
  const header = (name: string, cpus: number): string[] => [
    "#!/bin/bash",
    `#SBATCH --job-name=${name}`,
    `#SBATCH --cpus-per-task=${cpus}`,
    `#SBATCH --mem=${limits.mem}`,
    `#SBATCH --time=${limits.time}`,
  ];
  const array = [
    ...header("camdrop-all", 1),
    `#SBATCH --array=0-${plan.runs.length - 1}`,
    `#SBATCH --output=${logs}/task-%a.log`,
    "#",
    `# One training run per array task: ${plan.runs.length} runs of the ` +
    `${options.preset} preset,`,
    `# ${plan.seeds} seed(s), on ${plan.dataset} data (runs.tsv names them).`,
    "# Written by deno task repro --all --emit slurm. Run npm ci in the",
    "# repository once before submitting; the limits above are guesses",
    "# for one CPU core (wasm trains on one thread): edit them to suit.",
    "set -euo pipefail",
    `cd ${shellQuote(options.root)}`,
    `exec ${command} --task-index "$SLURM_ARRAY_TASK_ID"`,
    "",
  ].join("\n");
  const merge = [
    ...header("camdrop-merge", 1),
    `#SBATCH --output=${logs}/merge.log`,
    "#",
    "# Writes Tables 1, 3 and 4 and Figures 1, 3 and 4 from the finished",
    "# runs; fails naming any run that did not finish.",
    "set -euo pipefail",
    `cd ${shellQuote(options.root)}`,
    `exec ${command} --merge`,
    "",
  ].join("\n");
  const submit = [
    "#!/bin/bash",
    "# Submits the array job, then the merge job to run after every",
    "# array task succeeded.",
    "set -euo pipefail",
    `cd ${shellQuote(options.dir)}`,
    "mkdir -p logs",
    "array=$(sbatch --parsable camdrop-all.sbatch)",
    'array="${array%%;*}"',
    'merge=$(sbatch --parsable --dependency="afterok:${array}" ' +
    "camdrop-merge.sbatch)",
    'echo "submitted array job ${array} and merge job ${merge%%;*}"',
    "",
  ].join("\n");
  const runs = [
    "task\trun",
    ...plan.runs.map((config, index) => `${index}\t${config.name}`),
    "",
  ].join("\n");
  return {
    "camdrop-all.sbatch": array,
    "camdrop-merge.sbatch": merge,
    "submit.sh": submit,
    "runs.tsv": runs,
  };
}

/** Quotes `text` for bash when it contains anything but safe characters. */
export function shellQuote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}
