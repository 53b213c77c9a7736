import assert from "node:assert/strict";
import { join } from "node:path";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  writeFileAtomic,
} from "./files.ts";

Deno.test("checkpoints round-trip tensors and metadata", () => {
  const tensors = {
    "a.kernel": { shape: [2, 3], values: Float32Array.of(1, 2, 3, 4, 5, 6) },
    "b": { shape: [1], values: Float32Array.of(-0.5) },
  };
  const meta = { epoch: 4, rows: [{ ratio: Infinity, loss: NaN, acc: 0.5 }] };
  const bytes = encodeCheckpoint(tensors, meta);
  const decoded = decodeCheckpoint(bytes, "mem");
  assert.deepEqual(decoded.meta, meta);
  assert.deepEqual(decoded.tensors["a.kernel"].shape, [2, 3]);
  assert.deepEqual([...decoded.tensors["a.kernel"].values], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...decoded.tensors.b.values], [-0.5]);
});

Deno.test("decodeCheckpoint() names a corrupt file", () => {
  const bytes = encodeCheckpoint({
    x: { shape: [4], values: Float32Array.of(1, 2, 3, 4) },
  });
  assert.throws(
    () => decodeCheckpoint(bytes.slice(0, bytes.length - 8), "best.ckpt"),
    /Checkpoint best.ckpt is unreadable \(tensor "x" runs past the end\)/,
  );
  assert.throws(
    () => decodeCheckpoint(new Uint8Array([1, 0]), "tiny.ckpt"),
    /tiny.ckpt is unreadable \(file too short\)/,
  );
});

Deno.test("writeFileAtomic() leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "out.txt");
  await writeFileAtomic(path, "first");
  await writeFileAtomic(path, "second");
  assert.equal(await Deno.readTextFile(path), "second");
  const names = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  assert.deepEqual(names, ["out.txt"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic() names the path on failure", async () => {
  const path = join(await Deno.makeTempDir(), "missing", "out.txt");
  await assert.rejects(
    () => writeFileAtomic(path, "x"),
    new RegExp(`Failed to write ${path}`),
  );
});
