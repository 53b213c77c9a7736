/**
 * End-to-end test of `deno task repro --table 1` at smoke size. The full
 * grid of 26 runs (one seed, one epoch each) is killed with SIGKILL after
 * some runs finish and rerun to completion without retraining finished
 * runs. Then the table files and every run's evaluation.json are checked.
 * The same folder then serves `--all`: its Slurm script, one array task,
 * the merge step, and every table and figure, training only the 8 runs
 * that Table 1 lacks.
 *
 * It takes several minutes on 2 cores (26 short runs), so it is the only
 * full-grid test; the grid definitions have unit tests beside them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseMetricsCsv } from "../lib/metrics/frame.ts";
import { task } from "./_task.ts";

const root = new URL("..", import.meta.url).pathname;
const RUNS = 26;
/** Runs of --all at one seed: Table 1's, 2 Adam, 4 of Table 4, 2 r_max. */
const ALL_RUNS = RUNS + 8;
// Without Chromium, --all writes HTML only; with CI=true it must exist.
const chromiumProblem = await Deno.stat("/usr/bin/chromium").then(
  () => undefined,
  (error) => `/usr/bin/chromium is missing (${error.message})`,
);
if (chromiumProblem !== undefined) {
  if (Deno.env.get("CI") === "true") {
    throw new Error(`Chromium is required with CI=true: ${chromiumProblem}`);
  }
  console.log(`--all exports HTML only here: ${chromiumProblem}`);
}

function tableCommand(out: string, detached = false): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      "repro",
      "--preset",
      "smoke",
      "--table",
      "1",
      "--seeds",
      "1",
      "--epochs",
      "1",
      "--jobs",
      "2",
      "--out",
      out,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    detached,
  });
}

/** Returns the run folders under `out` whose status is complete. */
async function completeRuns(out: string): Promise<string[]> {
  const complete: string[] = [];
  for await (const entry of Deno.readDir(out)) {
    if (!entry.isDirectory) continue;
    try {
      const status = JSON.parse(
        await Deno.readTextFile(join(out, entry.name, "status.json")),
      );
      if (status.status === "complete") complete.push(entry.name);
    } catch {
      // No status yet, or a folder of another kind.
    }
  }
  return complete.sort();
}

/** Waits until no live process is left in process group `group`. */
async function waitForGroupExit(group: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const output = await new Deno.Command("ps", {
      args: ["-o", "stat=", "-g", String(group)],
      stdout: "piped",
      stderr: "null",
    }).output();
    const states = new TextDecoder().decode(output.stdout).trim().split("\n")
      .filter((state) => state !== "" && !state.startsWith("Z"));
    if (states.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`process group ${group} is still running after 10 s`);
}

/** Starts the grid, and SIGKILLs its process group once 3 runs finished. */
async function killAfterSomeRuns(out: string): Promise<string> {
  const child = tableCommand(out, true).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
    }
  })();
  const stdoutDone = child.stdout.pipeTo(new WritableStream());
  let killed = false;
  for (let i = 0; i < 1200 && !killed; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const complete = await completeRuns(out).catch(() => []);
    if (complete.length >= 3) {
      Deno.kill(-child.pid, "SIGKILL");
      killed = true;
    }
  }
  assert.ok(killed, `no 3 runs finished within 10 minutes:\n${stderr}`);
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", stderr);
  await waitForGroupExit(child.pid);
  await Promise.allSettled([stderrDone, stdoutDone]);
  return stderr;
}

Deno.test("table 1 grid resumes after SIGKILL", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "camdrop-table1-" });

  const firstErr = await killAfterSomeRuns(out);
  const finished = await completeRuns(out);
  assert.ok(finished.length >= 3, firstErr);
  assert.ok(finished.length < RUNS, "killed before the grid finished");
  const mtimes = new Map<string, number>();
  for (const run of finished) {
    const stat = await Deno.stat(join(out, run, "metrics.csv"));
    mtimes.set(run, stat.mtime!.getTime());
  }

  const second = await tableCommand(out).output();
  const secondErr = new TextDecoder().decode(second.stderr);
  const secondOut = new TextDecoder().decode(second.stdout);
  assert.equal(second.code, 0, secondErr);

  await t.step("finished runs are not retrained", async () => {
    for (const run of finished) {
      const stat = await Deno.stat(join(out, run, "metrics.csv"));
      assert.equal(stat.mtime!.getTime(), mtimes.get(run), run);
      assert.ok(
        secondErr.includes(`reused finished run ${join(out, run)}\n`),
        `${run} reused`,
      );
      const started = secondErr.split("\n").some((line) =>
        /^run \d+\/\d+: /.test(line) && line.endsWith(`: ${run}`)
      );
      assert.ok(!started, `${run} not started again`);
    }
  });

  await t.step("every run of the grid is complete", async () => {
    const complete = await completeRuns(out);
    assert.equal(complete.length, RUNS, complete.join("\n"));
    for (const fusion of ["concat", "sum", "film"]) {
      for (
        const method of [
          "naive",
          "gb",
          "ogm-ge",
          "opm",
          "pmr",
          "camdrop-r0.1",
          "camdrop-r0.3",
          "camdrop-r0.5",
        ]
      ) {
        const name = `embedded-${fusion}-${method}-s0`;
        assert.ok(complete.includes(name), name);
      }
    }
    assert.ok(complete.includes("embedded-audio-only-naive-s0"));
    assert.ok(complete.includes("embedded-visual-only-naive-s0"));
  });

  await t.step("evaluation.json matches each run", async () => {
    for (const run of await completeRuns(out)) {
      const evaluation = JSON.parse(
        await Deno.readTextFile(join(out, run, "evaluation.json")),
      );
      const metrics = parseMetricsCsv(
        await Deno.readTextFile(join(out, run, "metrics.csv")),
      );
      assert.equal(metrics.length, 1, `${run}: one epoch`);
      assert.equal(evaluation.epoch, 0, run);
      assert.equal(evaluation.samples, 96, run);
      // metrics.csv keeps 6 significant digits.
      const logged = metrics[0].test_acc as number;
      assert.ok(
        Math.abs(evaluation.accuracy - logged) < 1e-5,
        `${run}: accuracy ${evaluation.accuracy} vs logged ${logged}`,
      );
      const matrix: number[][] = evaluation.confusionMatrix;
      assert.equal(matrix.length, 10, run);
      const total = matrix.flat().reduce((a, b) => a + b, 0);
      assert.equal(total, 96, `${run}: confusion matrix counts`);
      const diagonal = matrix.reduce((sum, row, i) => sum + row[i], 0);
      assert.ok(
        Math.abs(diagonal / 96 - evaluation.accuracy) < 1e-12,
        `${run}: trace / samples`,
      );
      assert.equal(evaluation.perClassAccuracy.length, 10, run);
      assert.ok(evaluation.macroF1 >= 0, `${run}: macro-F1`);
      assert.ok(evaluation.macroF1 <= 1, `${run}: macro-F1`);
      for (
        const value of [
          evaluation.linearProbe.audio,
          evaluation.linearProbe.visual,
          evaluation.missingModality.audio,
          evaluation.missingModality.visual,
          evaluation.noisyModality.audio,
          evaluation.noisyModality.visual,
        ]
      ) {
        assert.equal(typeof value, "number", run);
        assert.ok(value >= 0, `${run}: ${value}`);
        assert.ok(value <= 1, `${run}: ${value}`);
      }
      assert.equal(evaluation.noisyModality.relativeStd, 1, run);
    }
  });

  await t.step("table files are written in three formats", async () => {
    const markdown = await Deno.readTextFile(join(out, "table1.md"));
    assert.ok(secondOut.includes(markdown.trim()), "stdout shows the table");
    const lines = markdown.split("\n");
    assert.ok(lines.includes("| Method | Concat | Sum | FiLM |"), markdown);
    const rows = lines.filter((line) => /^\| [A-Z]/.test(line));
    assert.equal(rows.length, 1 + 10, "header and ten method rows");
    assert.match(markdown, /\| CAMDrop \(r_max 0\.5\) \| [\d.*]+ \|/);
    assert.match(markdown, /\| Audio only \| [\d.]+ \| – \| – \|/);
    const bold = markdown.match(/\*\*[\d.]+\*\*/g) ?? [];
    assert.ok(bold.length >= 3, "at least one bold cell per column");

    const csv = (await Deno.readTextFile(join(out, "table1.csv"))).trim()
      .split("\n");
    assert.equal(csv.length, 1 + RUNS, "header and one line per cell");
    assert.match(csv[1], /^1,naive,"Naive fusion",concat,"Concat",1,[\d.]+,,/);

    const latex = await Deno.readTextFile(join(out, "table1.tex"));
    assert.match(latex, /\\begin\{tabular\}\{lccc\}/);
    assert.match(latex, /\\toprule/);
    assert.match(latex, /\\bottomrule/);
    assert.match(latex, /\\textbf\{[\d.]+\}/);
    assert.match(latex, /Visual only & \\multicolumn\{3\}\{c\}\{[\d.]+\}/);

    const record = JSON.parse(
      await Deno.readTextFile(join(out, "table1.json")),
    );
    assert.equal(record.table, 1);
    assert.equal(record.seeds, 1);
    assert.equal(record.runs.length, RUNS);
    for (const run of record.runs) {
      assert.equal(run.seed, 0);
      assert.equal(run.bestEpoch, 1);
      assert.equal(typeof run.testAccuracy, "number");
      assert.equal(typeof run.evaluation.macroF1, "number", run.name);
    }
  });

  // --all reuses the 26 runs of Table 1 and trains the 8 it adds.
  const allArgs = [
    "repro",
    "--all",
    "--preset",
    "smoke",
    "--seeds",
    "1",
    "--epochs",
    "1",
    "--out",
    out,
    "--figures",
    join(out, "figures"),
  ];
  const tasks: string[] = [];

  await t.step(
    "--emit slurm writes an array job, one task per run",
    async () => {
      const emitted = await task(...allArgs, "--emit", "slurm");
      assert.equal(emitted.code, 0, emitted.stderr);
      const dir = join(out, "slurm");
      for (
        const name of [
          "camdrop-all.sbatch",
          "camdrop-merge.sbatch",
          "submit.sh",
        ]
      ) {
        const check = await new Deno.Command("bash", {
          args: ["-n", join(dir, name)],
          stderr: "piped",
        }).output();
        assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
      }
      const rows = (await Deno.readTextFile(join(dir, "runs.tsv"))).trim()
        .split("\n").slice(1);
      tasks.push(...rows.map((row) => row.split("\t")[1]));
      assert.equal(tasks.length, ALL_RUNS);
      assert.equal(new Set(tasks).size, ALL_RUNS, "one task per run");
      const array = await Deno.readTextFile(join(dir, "camdrop-all.sbatch"));
      assert.match(
        array,
        new RegExp(`^#SBATCH --array=0-${ALL_RUNS - 1}$`, "m"),
      );
      assert.ok(array.includes(`--out ${out} `), "the shared output folder");
      const exec = array.split("\n").find((line) => line.startsWith("exec "));
      assert.ok(exec !== undefined, array);
      assert.doesNotMatch(exec, /--emit/);
      assert.match(exec, /--task-index "\$SLURM_ARRAY_TASK_ID"$/);
      for (const run of finished) assert.ok(tasks.includes(run), run);
    },
  );

  await t.step("--merge names the runs that are missing", async () => {
    const merged = await task(...allArgs, "--merge");
    assert.equal(merged.code, 1);
    assert.match(
      merged.stderr,
      new RegExp(
        `error: ${ALL_RUNS - RUNS} of ${ALL_RUNS} runs are not finished`,
      ),
    );
    assert.match(merged.stderr, /embedded-concat-naive-s0-adam/);
  });

  await t.step("--task-index trains exactly one run", async () => {
    const index = tasks.indexOf("embedded-concat-naive-s0-adam");
    assert.ok(index >= 0);
    const before = await completeRuns(out);
    const single = await task(...allArgs, "--task-index", String(index));
    assert.equal(single.code, 0, single.stderr);
    const after = await completeRuns(out);
    assert.deepEqual(
      after.filter((run) => !before.includes(run)),
      ["embedded-concat-naive-s0-adam"],
    );
    const bad = await task(...allArgs, "--task-index", String(ALL_RUNS));
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      new RegExp(`expected an integer from 0 to ${ALL_RUNS - 1}`),
    );
  });

  await t.step("--all writes every table and figure", async () => {
    const all = await task(...allArgs);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(
      all.stderr.split("\n").filter((line) => /^run \d+\/\d+: /.test(line))
        .length,
      ALL_RUNS - RUNS - 1,
      "only the runs no table had trained",
    );
    assert.match(all.stdout, /note: Table 2 \(CAMDrop with the TBN and PSP/);
    assert.match(all.stdout, new RegExp(`${ALL_RUNS} runs; done in`));
    const figures = join(out, "figures");
    // The same runs give the same Table 1 as --table 1.
    assert.equal(
      await Deno.readTextFile(join(figures, "table1.md")),
      await Deno.readTextFile(join(out, "table1.md")),
    );
    for (const id of [1, 3, 4]) {
      for (const extension of ["md", "csv", "tex", "json"]) {
        const stat = await Deno.stat(join(figures, `table${id}.${extension}`));
        assert.ok(stat.size > 0, `table${id}.${extension}`);
      }
    }
    const table3 = await Deno.readTextFile(join(figures, "table3.md"));
    assert.match(table3, /\| Naive fusion \| [\d.*]+ \| [\d.*]+ \|/);
    const table4 = await Deno.readTextFile(join(figures, "table4.md"));
    assert.match(table4, /\| batch 64, lr 0\.001 \| [\d.*]+ \|/);
    for (const figure of ["figure1", "figure3", "figure4"]) {
      const stem = join(figures, `${figure}-embedded`);
      const html = await Deno.readTextFile(`${stem}.html`);
      assert.match(html, /Plotly\.newPlot/, figure);
      if (chromiumProblem !== undefined) {
        assert.match(all.stderr, /Chromium not found/);
        continue;
      }
      const png = await Deno.readFile(`${stem}.png`);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], figure);
      const view = new DataView(png.buffer, png.byteOffset);
      assert.ok(view.getUint32(16) >= 800, `${figure} PNG width`);
      assert.ok(view.getUint32(20) >= 400, `${figure} PNG height`);
      assert.ok(png.length > 20_000, `${figure} PNG has content`);
      const svg = await Deno.readTextFile(`${stem}.svg`);
      assert.match(svg, /^<svg /, figure);
      const pdf = await Deno.readFile(`${stem}.pdf`);
      assert.equal(new TextDecoder().decode(pdf.subarray(0, 5)), "%PDF-");
    }
  });

  await t.step("--merge writes the outputs without training", async () => {
    const merged = await task(...allArgs, "--merge");
    assert.equal(merged.code, 0, merged.stderr);
    assert.doesNotMatch(merged.stderr, /^run \d+\/\d+: /m);
    assert.match(merged.stdout, /table: .*table4\.md/);
  });

  await Deno.remove(out, { recursive: true });
});

Deno.test("repro --table rejects options it sets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-table-bad-" });
  const cases: [string[], RegExp][] = [
    [["--table", "2"], /Unknown table 2: expected one of 1, 3, 4/],
    [["--table", "1", "--r-max", "0.2"], /--r-max cannot be combined/],
    [["--table", "3", "--optimizer", "adam"], /--optimizer cannot be/],
    [["--table", "4", "--lr", "0.1"], /--lr cannot be combined with --table 4/],
    [["--table", "1", "--seed", "1"], /--seed cannot be combined/],
    [["--table", "1", "--seeds", "0"], /Invalid seed count 0/],
    [["--seeds", "2"], /--seeds needs --table/],
    [["--table", "1", "--fusion", "gated"], /No runs of table 1 are left/],
    [["--table", "1", "--method", "dropout"], /Invalid method filter/],
    [["--noise-std=-1"], /invalid --noise-std -1: expected a number >= 0/],
    [["--all", "--r-max", "0.2"], /--r-max cannot be combined with --all/],
    [["--all", "--table", "1"], /--table cannot be combined with --all/],
    [["--merge"], /--merge needs --all/],
    [["--emit", "slurm"], /--emit needs --all/],
    [["--all", "--emit", "pbs"], /invalid --emit "pbs": expected slurm/],
    [["--all", "--merge", "--task-index", "0"], /--merge cannot be combined/],
    [["--all", "--task-index", "1.5"], /invalid --task-index 1\.5/],
  ];
  for (const [args, pattern] of cases) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "repro", "--preset", "smoke", "--out", dir, ...args],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, `${args.join(" ")} should fail`);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line for ${args.join(" ")}: ${stderr}`);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
  }
  await Deno.remove(dir, { recursive: true });
});
