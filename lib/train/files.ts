/**
 * Atomic file writes and model checkpoints. Every file is written to a
 * temporary name in the same folder and renamed into place, so a killed
 * process never leaves a half-written file under the final name.
 *
 * @module
 */

import type { StoredTensor } from "../models/parameters.ts";

/**
 * Writes `data` to `path` atomically (temporary file, then rename).
 * @throws {Error} Naming the path when the write or rename fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
): Promise<void> {
  const temporary = `${path}.tmp-${Deno.pid}`;
  try {
    if (typeof data === "string") {
      await Deno.writeTextFile(temporary, data);
    } else {
      await Deno.writeFile(temporary, data);
    }
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Failed to write ${path}: ${reason}. Check free disk space and write ` +
        `permission for that folder.`,
    );
  }
}

/** Header of a checkpoint file. */
interface CheckpointHeader {
  format: "camdrop-checkpoint-1";
  meta: Record<string, unknown>;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

/**
 * Encodes named tensors and metadata as one binary checkpoint: a 4-byte
 * little-endian header length, a JSON header, then float32 values.
 */
export function encodeCheckpoint(
  tensors: Record<string, StoredTensor>,
  meta: Record<string, unknown> = {},
): Uint8Array {
  const header: CheckpointHeader = {
    format: "camdrop-checkpoint-1",
    meta,
    tensors: [],
  };
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    header.tensors.push({
      name,
      shape: tensor.shape,
      offset,
      length: tensor.values.length,
    });
    offset += tensor.values.length;
  }
  const headerBytes = new TextEncoder().encode(
    JSON.stringify(header, keepNonFinite),
  );
  // Pad the header so the float32 block starts 4-byte aligned.
  const padded = Math.ceil(headerBytes.length / 4) * 4;
  const out = new Uint8Array(4 + padded + offset * 4);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(headerBytes, 4);
  out.fill(0x20, 4 + headerBytes.length, 4 + padded);
  const values = new Float32Array(out.buffer, 4 + padded, offset);
  for (const entry of header.tensors) {
    values.set(tensors[entry.name].values, entry.offset);
  }
  return out;
}

/**
 * Decodes a checkpoint written by {@linkcode encodeCheckpoint}.
 * @throws {Error} Naming `source` if the bytes are not a checkpoint.
 */
export function decodeCheckpoint(
  bytes: Uint8Array,
  source: string,
): { tensors: Record<string, StoredTensor>; meta: Record<string, unknown> } {
  const corrupt = (why: string) =>
    new Error(
      `Checkpoint ${source} is unreadable (${why}); rerun training to ` +
        `write a new one.`,
    );
  if (bytes.length < 4) throw corrupt("file too short");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset)
    .getUint32(0, true);
  if (4 + headerLength > bytes.length) throw corrupt("header length too large");
  let header: CheckpointHeader;
  try {
    header = JSON.parse(
      new TextDecoder().decode(bytes.subarray(4, 4 + headerLength)),
      restoreNonFinite,
    );
  } catch {
    throw corrupt("header is not JSON");
  }
  if (header.format !== "camdrop-checkpoint-1") {
    throw corrupt(`unknown format ${JSON.stringify(header.format)}`);
  }
  const count = (bytes.length - 4 - headerLength) / 4;
  const aligned = bytes.slice(4 + headerLength);
  const values = new Float32Array(aligned.buffer, 0, Math.floor(count));
  const tensors: Record<string, StoredTensor> = {};
  for (const entry of header.tensors) {
    if (entry.offset + entry.length > values.length) {
      throw corrupt(`tensor "${entry.name}" runs past the end`);
    }
    tensors[entry.name] = {
      shape: entry.shape,
      values: values.slice(entry.offset, entry.offset + entry.length),
    };
  }
  return { tensors, meta: header.meta };
}

// JSON has no NaN or Infinity (metrics can hold both, for example an
// imbalance ratio when visual accuracy is 0), so they travel as tagged
// strings.
function keepNonFinite(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) {
    return { $number: String(value) };
  }
  return value;
}

function restoreNonFinite(_key: string, value: unknown): unknown {
  if (
    value !== null && typeof value === "object" &&
    typeof (value as { $number?: unknown }).$number === "string"
  ) {
    return Number((value as { $number: string }).$number);
  }
  return value;
}
