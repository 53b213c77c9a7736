// Runs `npm ci` when node_modules is missing or older than the lock file,
// so `npx -y deno task ...` works on a fresh clone. Runs under Node.js,
// which every supported machine has, before Deno reads node_modules.
import { execSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const lock = join(root, "package-lock.json");
const installed = join(root, "node_modules", ".package-lock.json");
const stale = !existsSync(installed) ||
  statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  process.stderr.write("node_modules is missing or stale: running npm ci\n");
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: "inherit" });
}

// Tasks start Deno as node_modules/deno/deno: inside this project a bare
// `deno` in a task resolves to node_modules/.bin/deno, which Deno's task
// runner starts as a Node script and fails on. The deno package's
// postinstall step places the binary there; if npm skipped install
// scripts, run that step now.
const binary = join(root, "node_modules", "deno", "deno");
if (!existsSync(binary)) {
  execSync("node install.cjs", {
    cwd: join(root, "node_modules", "deno"),
    stdio: "inherit",
  });
}
