/**
 * `deno task eval RUN_DIR`: evaluates a run folder's best checkpoint on the
 * test split and compares it with the test accuracy logged in training.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { evaluateRun, setupBackend } from "../lib/mod.ts";
import { fail, writeErr } from "./_cli.ts";

const HELP = `Usage: deno task eval RUN_DIR [--backend NAME]

Loads RUN_DIR/best.ckpt (the best epoch on validation accuracy), evaluates
it on the test split with the run's data settings, and prints the measured
test accuracy beside the one logged during training.

Options:
  --backend NAME   auto | tensorflow | wasm | webgpu | cpu (default auto).
  --help           show this text.
`;

const args = [...Deno.args];
if (args.includes("--help")) {
  console.log(HELP);
  Deno.exit(0);
}
let backend = "auto";
const backendIndex = args.indexOf("--backend");
if (backendIndex >= 0) {
  backend = args[backendIndex + 1] ?? fail("--backend needs a value.");
  args.splice(backendIndex, 2);
}
const unknown = args.find((arg) => arg.startsWith("--"));
if (unknown !== undefined) {
  fail(`Unknown option '${unknown}'. See --help.`);
}
if (args.length !== 1) {
  fail(`expected one run folder, got ${JSON.stringify(args)}. See --help.`);
}

tf.enableProdMode();
try {
  const info = await setupBackend(backend as never, {
    onWarning: (message) => writeErr(`warning: ${message}\n`),
  });
  const result = await evaluateRun(args[0]);
  const measured = result.metrics.test_acc as number;
  console.log(`run: ${result.dir}`);
  console.log(`backend: ${info.name}`);
  console.log(`checkpoint epoch: ${result.epoch + 1}`);
  console.log(`test accuracy: ${(100 * measured).toFixed(2)}%`);
  console.log(
    `logged test accuracy: ${(100 * result.loggedTestAccuracy).toFixed(2)}%`,
  );
  for (const [key, value] of Object.entries(result.metrics)) {
    console.log(`  ${key}: ${Number(value).toFixed(4)}`);
  }
} catch (error) {
  fail((error as Error).message);
}
