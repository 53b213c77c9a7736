// Starts a toolkit script under Deno with permissions scoped to the paths
// its command line names, because paths given at run time (--out,
// --data-root, --config, ...) cannot be written into deno.json. Runs
// `npm ci` first when node_modules is missing or stale.
//
// Usage: node scripts/launch.mjs <repro|eval|bench|test|prepare|cache_clear>
//        [script args]
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { permissionFlags } from "./_permissions.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
await import("./ensure_deps.mjs");

const [name, ...args] = process.argv.slice(2);
const flags = permissionFlags(name, args, root, tmpdir());
if (flags === undefined) {
  process.stderr.write(
    `error: unknown script "${name}": expected repro, eval, bench, run_tests, prepare or cache_clear.\n`,
  );
  process.exit(2);
}

const deno = join(root, "node_modules", "deno", "deno");
const script = join(root, "scripts", `${name}.ts`);
const child = spawn(deno, ["run", ...flags, script, ...args], {
  cwd: root,
  stdio: "inherit",
});
// Ctrl-C reaches the whole process group; Deno handles it and exits.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => child.kill("SIGTERM"));
child.on("exit", (code, signal) => {
  process.exit(code ?? (signal === "SIGKILL" ? 137 : 1));
});
