import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CACHE_MARKER,
  type CacheCodec,
  cacheKey,
  clearPreprocessCache,
  PreprocessCache,
} from "./_cache.ts";

const TEXT: CacheCodec<string> = {
  decode: (bytes) =>
    bytes.length > 0 ? new TextDecoder().decode(bytes) : undefined,
  encode: (text) => new TextEncoder().encode(text),
};

const FILE = { path: "/d/a.wav", size: 10, mtime: 5 };

Deno.test("cacheKey() changes with file and settings", () => {
  const key = cacheKey(FILE, { rate: 16000 });
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(cacheKey({ ...FILE }, { rate: 16000 }), key);
  assert.notEqual(cacheKey({ ...FILE, mtime: 6 }, { rate: 16000 }), key);
  assert.notEqual(cacheKey({ ...FILE, size: 11 }, { rate: 16000 }), key);
  assert.notEqual(cacheKey(FILE, { rate: 8000 }), key);
});

Deno.test("PreprocessCache computes once per key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-cache-" });
  const cache = new PreprocessCache(join(dir, "c"));
  let calls = 0;
  const compute = () => `value ${++calls}`;
  assert.equal(cache.getOrCompute("ab".repeat(32), TEXT, compute), "value 1");
  assert.equal(cache.getOrCompute("ab".repeat(32), TEXT, compute), "value 1");
  assert.equal(calls, 1);
  assert.deepEqual(cache.stats, { hits: 1, misses: 1 });

  // A fresh instance on the same folder reads the stored entry.
  const again = new PreprocessCache(join(dir, "c"));
  assert.equal(again.getOrCompute("ab".repeat(32), TEXT, compute), "value 1");
  assert.deepEqual(again.stats, { hits: 1, misses: 0 });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("PreprocessCache replaces invalid entries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-cache-" });
  const cache = new PreprocessCache(dir);
  const key = "cd".repeat(32);
  cache.getOrCompute(key, TEXT, () => "first");
  Deno.writeFileSync(join(dir, "cd", `${key}.bin`), new Uint8Array(0));
  assert.equal(cache.getOrCompute(key, TEXT, () => "second"), "second");
  assert.equal(cache.getOrCompute(key, TEXT, () => "third"), "second");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("PreprocessCache without a folder stores nothing", () => {
  const cache = new PreprocessCache(null);
  let calls = 0;
  cache.getOrCompute("ef".repeat(32), TEXT, () => `v${++calls}`);
  cache.getOrCompute("ef".repeat(32), TEXT, () => `v${++calls}`);
  assert.equal(calls, 2);
});

Deno.test("clearPreprocessCache() removes only cache files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-cache-" });
  const cache = new PreprocessCache(join(dir, "c"));
  cache.getOrCompute("ab".repeat(32), TEXT, () => "12345");
  cache.getOrCompute("cd".repeat(32), TEXT, () => "123");
  await Deno.writeTextFile(join(dir, "c", "notes.txt"), "keep me");

  const cleared = clearPreprocessCache(join(dir, "c"));
  assert.deepEqual(cleared, { files: 2, bytes: 8 });
  const left = [...Deno.readDirSync(join(dir, "c"))].map((item) => item.name);
  assert.deepEqual(left, ["notes.txt"]);

  await Deno.remove(join(dir, "c", "notes.txt"));
  const other = new PreprocessCache(join(dir, "c"));
  other.getOrCompute("ab".repeat(32), TEXT, () => "1");
  clearPreprocessCache(join(dir, "c"));
  assert.equal(Deno.statSync(dir).isDirectory, true);
  assert.throws(() => Deno.statSync(join(dir, "c")), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("clearPreprocessCache() rejects unmarked folders", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-cache-" });
  await Deno.writeTextFile(join(dir, "thesis.tex"), "\\begin{document}");
  assert.throws(
    () => clearPreprocessCache(dir),
    new RegExp(`is not a preprocessing cache \\(it has no ${CACHE_MARKER}\\)`),
  );
  assert.ok(Deno.statSync(join(dir, "thesis.tex")).isFile);
  assert.deepEqual(clearPreprocessCache(join(dir, "absent")), {
    files: 0,
    bytes: 0,
  });
  await Deno.remove(dir, { recursive: true });
});
