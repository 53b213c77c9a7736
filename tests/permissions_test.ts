/**
 * Least privilege: no task grants every permission.
 */

import assert from "node:assert/strict";
// @ts-types="../scripts/_permissions.d.ts"
import { permissionFlags } from "../scripts/_permissions.mjs";

const root = new URL("..", import.meta.url);

Deno.test("deno.json tasks never grant all permissions", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  const tasks = Object.entries(config.tasks) as [
    string,
    string | { command: string },
  ][];
  assert.ok(tasks.length >= 4);
  for (const [name, task] of tasks) {
    const command = typeof task === "string" ? task : task.command;
    assert.doesNotMatch(command, /(^|\s)-A(\s|$)/, `task ${name} uses -A`);
    assert.doesNotMatch(command, /--allow-all/, `task ${name}: --allow-all`);
  }
});

Deno.test("repro flags scope writes to its folders", () => {
  const flags = permissionFlags(
    "repro",
    ["--out", "/work/x/runs", "--figures=/work/x/fig", "--data-root", "/d"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(flags.includes(
    "--allow-write=/work/x/runs,/work/x/fig,/repo/.cache/data",
  ));
  assert.ok(flags.includes(
    "--allow-read=/repo,/work/x/runs,/work/x/fig,/d,/repo/.cache/data",
  ));
  // --allow-ffi is the exception: OpenBLAS needs it (tested below).
  for (const flag of flags) {
    assert.doesNotMatch(flag, /^--allow-(write|all|run)$/, flag);
    assert.notEqual(flag, "-A");
  }
});

Deno.test("repro --all may start Chromium only", () => {
  const flags = permissionFlags(
    "repro",
    ["--all", "--out", "/o", "--figures", "/f", "--cache-dir", "none"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(flags.includes("--allow-run=/usr/bin/chromium"), flags.join(" "));
  assert.ok(flags.includes("--allow-write=/o,/f,/tmp"), flags.join(" "));
  const plain = permissionFlags(
    "repro",
    ["--out", "/o", "--figures", "/f", "--cache-dir", "none"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(!plain.some((flag) => flag.startsWith("--allow-run")));
});

Deno.test("repro flags follow --cache-dir", () => {
  const custom = permissionFlags(
    "repro",
    ["--out", "/o", "--figures", "/f", "--cache-dir", "/c"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(custom.includes("--allow-write=/o,/f,/c"));
  assert.ok(custom.includes("--allow-read=/repo,/o,/f,/c"));
  const off = permissionFlags(
    "repro",
    ["--out", "/o", "--figures", "/f", "--cache-dir", "none"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(off.includes("--allow-write=/o,/f"));
});

Deno.test("repro reads a manifest's folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-perm-" });
  const manifest = `${dir}/manifest.csv`;
  await Deno.writeTextFile(manifest, "split,label,audio,frames\n");
  const flags = permissionFlags(
    "repro",
    ["--out", "/o", "--figures", "/f", "--data-root", manifest],
    "/repo",
    "/tmp",
  )!;
  assert.ok(
    flags.includes(`--allow-read=/repo,/o,/f,${dir},/repo/.cache/data`),
    flags.join(" "),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prepare flags run only ffmpeg", () => {
  const flags = permissionFlags(
    "prepare",
    ["--videos", "/v", "--labels", "/l.csv", "--out", "/o"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(flags.includes("--allow-read=/repo,/v,/l.csv,/o"));
  assert.ok(flags.includes("--allow-write=/o"));
  assert.ok(flags.includes("--allow-run=ffmpeg,ffprobe"));
  assert.equal(flags.filter((f) => f.startsWith("--allow-run")).length, 1);
});

Deno.test("cache_clear flags write the cache only", () => {
  const fallback = permissionFlags("cache_clear", [], "/repo", "/tmp")!;
  assert.ok(fallback.includes("--allow-write=/repo/.cache/data"));
  const custom = permissionFlags(
    "cache_clear",
    ["--cache-dir", "/c"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(custom.includes("--allow-write=/c"));
  assert.ok(custom.includes("--allow-read=/repo,/c"));
});

Deno.test("eval flags only read", () => {
  const flags = permissionFlags("eval", ["runs/a"], "/repo", "/tmp")!;
  assert.equal(flags.filter((f) => f.startsWith("--allow-write")).length, 0);
  assert.ok(flags[0].startsWith("--allow-read=/repo,"));
  assert.equal(permissionFlags("other", [], "/repo", "/tmp"), undefined);
});

Deno.test("eval reads the run folder after --backend", () => {
  const flags = permissionFlags(
    "eval",
    ["--backend", "wasm", "/data/run"],
    "/repo",
    "/tmp",
  )!;
  assert.equal(flags[0], "--allow-read=/repo,/data/run");
});

Deno.test("training tasks grant FFI for OpenBLAS", () => {
  // Unscoped, because Deno 2.9's pointer functions reject a path-scoped
  // --allow-ffi. Only the tasks that train get it.
  const repro = permissionFlags("repro", [], "/repo", "/tmp")!;
  const evaluate = permissionFlags("eval", ["runs/a"], "/repo", "/tmp")!;
  const prepare = permissionFlags("prepare", [], "/repo", "/tmp")!;
  assert.ok(repro.includes("--allow-ffi"), repro.join(" "));
  assert.ok(evaluate.includes("--allow-ffi"), evaluate.join(" "));
  assert.ok(!prepare.some((flag) => flag.startsWith("--allow-ffi")));
});

Deno.test("bench may write its --output", () => {
  const flags = permissionFlags(
    "bench",
    ["--quick", "--output", "/records/bench.md"],
    "/repo",
    "/tmp",
  )!;
  assert.ok(
    flags.includes("--allow-write=/repo/docs,/tmp,/records/bench.md"),
    flags.join(" "),
  );
});
