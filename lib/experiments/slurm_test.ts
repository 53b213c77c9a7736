import assert from "node:assert/strict";
import { join } from "node:path";
import { planAll } from "./all.ts";
import { shellQuote, SLURM_FILES, slurmFiles } from "./slurm.ts";

const plan = planAll("smoke", [], 1);
const options = {
  root: "/opt/camdrop toolkit",
  dir: "/scratch/runs/slurm",
  args: ["--all", "--preset", "smoke", "--out", "/scratch/it's runs"],
  preset: "smoke",
};

Deno.test("slurmFiles() names one array task per run", () => {
  const files = slurmFiles(plan, options);
  assert.deepEqual(Object.keys(files), [...SLURM_FILES]);
  const array = files["camdrop-all.sbatch"];
  assert.match(
    array,
    new RegExp(`^#SBATCH --array=0-${plan.runs.length - 1}$`, "m"),
  );
  assert.match(array, /--task-index "\$SLURM_ARRAY_TASK_ID"$/m);
  assert.match(array, /^cd '\/opt\/camdrop toolkit'$/m);
  assert.ok(array.includes(`'/scratch/it'"'"'s runs'`), array);
  assert.match(
    array,
    /^#SBATCH --output=\/scratch\/runs\/slurm\/logs\/task-%a\.log$/m,
  );
  assert.match(files["camdrop-merge.sbatch"], / --merge$/m);
  assert.doesNotMatch(files["camdrop-merge.sbatch"], /--array/);
  assert.match(files["submit.sh"], /--dependency="afterok:\$\{array\}"/);

  const rows = files["runs.tsv"].trim().split("\n");
  assert.equal(rows[0], "task\trun");
  assert.equal(rows.length, 1 + plan.runs.length);
  for (const [index, config] of plan.runs.entries()) {
    assert.equal(rows[index + 1], `${index}\t${config.name}`);
  }
});

Deno.test("slurmFiles() writes scripts that bash parses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-slurm-" });
  const files = slurmFiles(plan, { ...options, dir });
  for (const name of SLURM_FILES.filter((n) => !n.endsWith(".tsv"))) {
    const path = join(dir, name);
    await Deno.writeTextFile(path, files[name]);
    const check = await new Deno.Command("bash", {
      args: ["-n", path],
      stderr: "piped",
    }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("slurmFiles() scales its limits with the preset", () => {
  const smoke = slurmFiles(plan, options)["camdrop-all.sbatch"];
  const paper = slurmFiles(plan, { ...options, preset: "paper" })[
    "camdrop-all.sbatch"
  ];
  assert.match(smoke, /^#SBATCH --time=00:15:00$/m);
  assert.match(paper, /^#SBATCH --time=7-00:00:00$/m);
  assert.match(paper, /^#SBATCH --mem=16G$/m);
});

Deno.test("slurmFiles() rejects relative paths and empty plans", () => {
  assert.throws(
    () => slurmFiles(plan, { ...options, root: "toolkit" }),
    /"toolkit" is not an absolute path/,
  );
  assert.throws(
    () => slurmFiles({ ...plan, runs: [] }, options),
    /the plan has no runs/,
  );
});

Deno.test("shellQuote() leaves safe words and quotes the rest", () => {
  assert.equal(shellQuote("--out"), "--out");
  assert.equal(shellQuote("/a/b-c_d.e"), "/a/b-c_d.e");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("$HOME"), "'$HOME'");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
  assert.equal(shellQuote(""), "''");
});
