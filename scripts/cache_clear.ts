/**
 * `deno task cache:clear`: deletes the preprocessing cache of the on-disk
 * datasets (spectrograms and decoded frames). Run with --help for the
 * options.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { clearPreprocessCache, DEFAULT_CACHE_DIR } from "../lib/mod.ts";
import { fail, usageError } from "./_cli.ts";

const HELP = `Usage: deno task cache:clear [--cache-dir DIR]

Deletes the cached spectrograms and decoded frames of the on-disk
datasets. Only files the cache wrote are removed, and only in a folder
marked as a cache. Later runs decode the data again.

Options:
  --cache-dir DIR    cache folder (default .cache/data in the repository).
  --help             show this text.
`;

let values;
try {
  values = parseArgs({
    args: Deno.args,
    options: {
      "cache-dir": { type: "string", default: DEFAULT_CACHE_DIR },
      help: { type: "boolean", default: false },
    },
    allowPositionals: false,
  }).values;
} catch (error) {
  fail(usageError(error));
}
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const dir = values["cache-dir"];
try {
  const { files, bytes } = clearPreprocessCache(dir);
  console.log(
    files === 0
      ? `nothing to clear in ${dir}`
      : `removed ${files} cache entries (${
        (bytes / 1e6).toFixed(1)
      } MB) from ${dir}`,
  );
} catch (error) {
  fail((error as Error).message);
}
