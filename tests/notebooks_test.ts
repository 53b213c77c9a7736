/**
 * Notebook tests. The runner (scripts/run_notebook.py) keeps a display
 * message that arrives after idle and fails on errors. Every notebook in
 * notebooks/ executes in the Deno kernel, and its code cells pass
 * `deno check` once extracted into a module.
 *
 * The execution tests need Debian's python3-jupyter-client and
 * python3-nbformat under /usr/bin/python3. Where they are missing the
 * tests are skipped with the reason printed; with CI=true they run and
 * fail instead, because CI installs them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const python = "/usr/bin/python3";
const runner = join(root, "scripts", "run_notebook.py");
const fixtures = join(root, "tests", "fixtures");
const notebooksDir = join(root, "notebooks");

interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: {
    output_type: string;
    text?: string | string[];
    data?: Record<string, unknown>;
  }[];
}

async function findJupyterProblem(): Promise<string | undefined> {
  try {
    const { success, stderr } = await new Deno.Command(python, {
      args: ["-c", "import jupyter_client, nbformat"],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      return `${python} cannot import jupyter_client and nbformat ` +
        `(${new TextDecoder().decode(stderr).trim().split("\n").at(-1)}); ` +
        `install Debian's python3-jupyter-client and python3-nbformat`;
    }
    return undefined;
  } catch (error) {
    return `${python} failed to start: ${(error as Error).message}`;
  }
}

const jupyterProblem = await findJupyterProblem();
const requireJupyter = Deno.env.get("CI") === "true";
if (jupyterProblem !== undefined && !requireJupyter) {
  console.log(`skipping notebook execution tests: ${jupyterProblem}`);
}
const ignoreExecution = jupyterProblem !== undefined && !requireJupyter;

function checkJupyter(): void {
  if (jupyterProblem !== undefined) {
    throw new Error(`Jupyter is required with CI=true: ${jupyterProblem}`);
  }
}

/** Runs the runner; returns its exit code, stderr and the written notebook. */
async function runNotebook(
  notebook: string,
  extra: string[] = [],
): Promise<{ code: number; stderr: string; cells: NotebookCell[] }> {
  const output = await Deno.makeTempFile({ suffix: ".ipynb" });
  try {
    const { code, stderr } = await new Deno.Command(python, {
      args: [runner, notebook, "--output", output, ...extra],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const written = JSON.parse(await Deno.readTextFile(output));
    return {
      code,
      stderr: new TextDecoder().decode(stderr),
      cells: (written.cells as NotebookCell[]).filter((c) =>
        c.cell_type === "code"
      ),
    };
  } finally {
    await Deno.remove(output);
  }
}

function text(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join("") : value ?? "";
}

function outputText(cell: NotebookCell): string {
  return (cell.outputs ?? []).map((o) =>
    text(o.text) + text(o.data?.["text/plain"] as string | string[])
  ).join("\n");
}

async function listNotebooks(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(notebooksDir)) {
    if (entry.isFile && entry.name.endsWith(".ipynb")) names.push(entry.name);
  }
  return names.sort();
}

Deno.test({
  name: "runner keeps a display sent after idle",
  ignore: ignoreExecution,
  fn: async () => {
    checkJupyter();
    const notebook = join(fixtures, "late_display.ipynb");
    const { code, stderr, cells } = await runNotebook(notebook);
    assert.equal(code, 0, stderr);
    assert.match(outputText(cells[0]), /late display/);
    assert.match(outputText(cells[2]), /next cell 1/);
    assert.doesNotMatch(outputText(cells[2]), /late display/);
  },
});

Deno.test({
  name: "runner without grace loses the display",
  ignore: ignoreExecution,
  fn: async () => {
    // The control case: the same notebook read only up to idle, as
    // nbclient does, loses the message, and the runner reports the empty
    // cell instead of passing.
    checkJupyter();
    const notebook = join(fixtures, "late_display.ipynb");
    const { code, stderr, cells } = await runNotebook(notebook, [
      "--grace",
      "0",
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /cell 1: produced no output/);
    assert.doesNotMatch(outputText(cells[0]), /late display/);
  },
});

Deno.test({
  name: "runner fails on a cell error",
  ignore: ignoreExecution,
  fn: async () => {
    checkJupyter();
    const notebook = join(fixtures, "cell_error.ipynb");
    const { code, stderr, cells } = await runNotebook(notebook);
    assert.equal(code, 1);
    assert.match(stderr, /cell 2: Error: cell failed on purpose/);
    assert.equal(cells[1].outputs?.[0].output_type, "error");
    assert.equal(cells[2].outputs?.length ?? 0, 0, "cell 3 should not run");
  },
});

for (const name of await listNotebooks()) {
  Deno.test({
    name: `${name} executes in the Deno kernel`,
    ignore: ignoreExecution,
    fn: async () => {
      checkJupyter();
      const { code, stderr, cells } = await runNotebook(
        join(notebooksDir, name),
      );
      assert.equal(code, 0, `${name} failed:\n${stderr}`);
      assert.ok(cells.length > 0, `${name} has no code cells`);
    },
  });

  Deno.test(`${name} code cells pass deno check`, async () => {
    const notebook = JSON.parse(
      await Deno.readTextFile(join(notebooksDir, name)),
    );
    const cells = (notebook.cells as NotebookCell[]).filter((c) =>
      c.cell_type === "code"
    );
    // Cells run in one module scope, so concatenated they form the module
    // the kernel executes. The import of ../lib/mod.ts resolves from a file
    // placed in notebooks/.
    const source = cells.map((c, i) => `// cell ${i + 1}\n${text(c.source)}`)
      .join("\n\n") + "\n";
    const first = notebook.cells[0] as NotebookCell;
    assert.equal(first.cell_type, "markdown", `${name} opens with code`);
    assert.match(text(first.source), /\*\*Question\.\*\*/);
    assert.match(text(first.source), /\*\*Caveats\.\*\*/);
    for (const match of source.matchAll(/from\s+"([^"]+)"/g)) {
      assert.equal(match[1], "../lib/mod.ts", `${name} imports ${match[1]}`);
    }
    const file = join(notebooksDir, `.check_${name.replace(".ipynb", "")}.ts`);
    await Deno.writeTextFile(file, source);
    try {
      const { success, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["check", "--quiet", file],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(
        success,
        `deno check of ${name}'s cells failed:\n` +
          new TextDecoder().decode(stderr),
      );
    } finally {
      await Deno.remove(file);
    }
  });
}
