/**
 * Reads and checks the files of the embedded digits dataset (written by
 * data/generate.ts) and decodes them into typed arrays.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Split } from "./types.ts";

/** Command that rebuilds the data files, quoted in error messages. */
export const REGENERATE_COMMAND =
  "npx deno run --allow-read --allow-write --allow-run data/generate.ts " +
  "(needs the Debian package espeak-ng)";

const FORMAT = "embedded-digits/1";
const SPLITS: readonly Split[] = ["train", "val", "test"];

/** A synthetic speaker: one espeak-ng voice, variant, pitch and speed. */
export interface SpeakerRecord {
  id: number;
  split: Split;
  voice: string;
  variant: string;
  pitch: number;
  speed: number;
}

/** The parsed index.json; per-clip and per-image fields are columns. */
export interface EmbeddedIndex {
  format: string;
  seed: number;
  sampleRate: number;
  imageSide: number;
  classNames: string[];
  sources: Record<string, Record<string, string>>;
  files: Record<string, { bytes: number; sha256: string }>;
  speakers: SpeakerRecord[];
  clips: {
    speaker: number[];
    label: number[];
    offset: number[];
    length: number[];
  };
  images: { label: number[]; sourceIndex: number[] };
  splits: Record<Split, { image: number[]; clip: number[] }>;
}

/** Decoded dataset files. */
export interface EmbeddedStore {
  index: EmbeddedIndex;
  /** Clips as floats in [-1, 1), one array per clip. */
  clips: Float32Array[];
  /** Images, 8-bit grey, `imageSide`² bytes each, concatenated. */
  images: Uint8Array;
  /** SHA-256 over index.json, clips.bin and images.bin, in that order. */
  filesHash: string;
}

function invalidFileError(path: string, problem: string): Error {
  return new Error(
    `Embedded digits file ${path} is invalid (${problem}); regenerate the ` +
      `data with: ${REGENERATE_COMMAND}`,
  );
}

async function readDataFile(dir: URL, name: string): Promise<Uint8Array> {
  const url = new URL(name, dir);
  try {
    return await Deno.readFile(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `Embedded digits file ${url.pathname} not found; regenerate the ` +
          `data with: ${REGENERATE_COMMAND}`,
      );
    }
    throw error;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function checkIndex(index: EmbeddedIndex, path: string): void {
  if (index.format !== FORMAT) {
    throw invalidFileError(
      path,
      `format ${JSON.stringify(index.format)}, expected ${FORMAT}`,
    );
  }
  const clipCount = index.clips.label.length;
  const imageCount = index.images.label.length;
  for (const column of ["speaker", "offset", "length"] as const) {
    if (index.clips[column].length !== clipCount) {
      throw invalidFileError(
        path,
        `clips.${column} length differs from clips.label`,
      );
    }
  }
  for (const split of SPLITS) {
    const { image, clip } = index.splits[split] ?? {};
    if (!Array.isArray(image) || !Array.isArray(clip)) {
      throw invalidFileError(path, `split ${split} missing`);
    }
    if (image.length !== clip.length) {
      throw invalidFileError(
        path,
        `split ${split} has unequal image and clip columns`,
      );
    }
    for (let i = 0; i < image.length; i++) {
      if (!(image[i] >= 0 && image[i] < imageCount)) {
        throw invalidFileError(
          path,
          `split ${split} sample ${i} image out of range`,
        );
      }
      if (!(clip[i] >= 0 && clip[i] < clipCount)) {
        throw invalidFileError(
          path,
          `split ${split} sample ${i} clip out of range`,
        );
      }
      if (index.images.label[image[i]] !== index.clips.label[clip[i]]) {
        throw invalidFileError(
          path,
          `split ${split} sample ${i} pairs two digits`,
        );
      }
    }
  }
}

/**
 * Reads index.json, clips.bin and images.bin from `dir` and checks their
 * sizes and SHA-256 sums against the index.
 *
 * @throws {Error} If a file is missing or does not match the index; the
 * message names the file and the command that rebuilds the data.
 */
export async function readEmbeddedStore(dir: URL): Promise<EmbeddedStore> {
  const indexBytes = await readDataFile(dir, "index.json");
  const indexPath = new URL("index.json", dir).pathname;
  let index: EmbeddedIndex;
  try {
    index = JSON.parse(new TextDecoder().decode(indexBytes));
    checkIndex(index, indexPath);
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof TypeError) {
      throw invalidFileError(indexPath, error.message);
    }
    throw error;
  }

  const hash = createHash("sha256").update(indexBytes);
  const files: Record<string, Uint8Array> = {};
  for (const name of ["clips.bin", "images.bin"]) {
    const bytes = await readDataFile(dir, name);
    const path = new URL(name, dir).pathname;
    const expected = index.files[name];
    if (expected === undefined) {
      throw invalidFileError(indexPath, `no entry for ${name}`);
    }
    if (bytes.length !== expected.bytes) {
      throw invalidFileError(
        path,
        `${bytes.length} bytes, index says ${expected.bytes}`,
      );
    }
    if (sha256(bytes) !== expected.sha256) {
      throw invalidFileError(path, "SHA-256 differs from index.json");
    }
    hash.update(bytes);
    files[name] = bytes;
  }

  // clips.bin is little-endian int16 PCM.
  const pcm = new DataView(files["clips.bin"].buffer);
  const clips = index.clips.offset.map((offset, i) => {
    const length = index.clips.length[i];
    if (2 * (offset + length) > pcm.byteLength) {
      throw invalidFileError(
        indexPath,
        `clip ${i} runs past the end of clips.bin`,
      );
    }
    const clip = new Float32Array(length);
    for (let j = 0; j < length; j++) {
      clip[j] = pcm.getInt16(2 * (offset + j), true) / 32768;
    }
    return clip;
  });
  const imageBytes = index.imageSide * index.imageSide;
  if (files["images.bin"].length !== imageBytes * index.images.label.length) {
    throw invalidFileError(
      indexPath,
      "images.bin size does not match the image count",
    );
  }
  return {
    index,
    clips,
    images: files["images.bin"],
    filesHash: hash.digest("hex"),
  };
}
