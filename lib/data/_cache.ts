/**
 * A folder of preprocessed data (spectrograms, decoded frames) keyed by a
 * SHA-256 of the source file's path, size and modification time plus the
 * preprocessing settings. A changed source file or setting gives a new
 * key, so stale entries are never read; they stay until the folder is
 * cleared (`deno task cache:clear`).
 *
 * Layout: `<dir>/<first two hex digits>/<64 hex digits>.bin`, plus the
 * marker file {@linkcode CACHE_MARKER} that lets the clearing script
 * recognise the folder. Entries are written to a temporary file and
 * renamed, so concurrent runs never read a partial entry.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import type { MediaFile } from "./_media.ts";

/** Name of the file that marks a folder as a preprocessing cache. */
export const CACHE_MARKER = "camdrop-data-cache.json";

/** Counts of cache look-ups since the dataset was opened. */
export interface CacheStats {
  /** Entries read from the folder. */
  hits: number;
  /** Look-ups that had to decode the source file. */
  misses: number;
}

/** Conversion of one kind of cache entry to and from bytes. */
export interface CacheCodec<T> {
  /** Returns undefined for bytes that are not a valid entry. */
  decode(bytes: Uint8Array): T | undefined;
  encode(value: T): Uint8Array;
}

/** Returns the key of a preprocessed version of `file`. */
export function cacheKey(file: MediaFile, settings: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify([file.path, file.size, file.mtime, settings]))
    .digest("hex");
}

/**
 * A preprocessing cache in one folder, or a stand-in that stores nothing
 * when the folder is null. All I/O is synchronous because dataset batches
 * are produced by a synchronous iterator.
 */
export class PreprocessCache {
  /** Cache folder, or null when caching is off. */
  readonly dir: string | null;
  readonly stats: CacheStats = { hits: 0, misses: 0 };
  #ready = false;

  constructor(dir: string | null) {
    this.dir = dir;
  }

  #path(key: string): string {
    return join(this.dir!, key.slice(0, 2), `${key}.bin`);
  }

  /**
   * Returns the entry of `key` when `codec` accepts its bytes; otherwise
   * calls `compute` and stores its result (a miss).
   */
  getOrCompute<T>(key: string, codec: CacheCodec<T>, compute: () => T): T {
    if (this.dir !== null) {
      let bytes: Uint8Array | undefined;
      try {
        bytes = Deno.readFileSync(this.#path(key));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw this.#error(error);
      }
      const value = bytes === undefined ? undefined : codec.decode(bytes);
      if (value !== undefined) {
        this.stats.hits++;
        return value;
      }
    }
    this.stats.misses++;
    const value = compute();
    this.write(key, codec.encode(value));
    return value;
  }

  /** Stores `bytes` under `key`; does nothing when caching is off. */
  write(key: string, bytes: Uint8Array): void {
    if (this.dir === null) return;
    try {
      this.#prepare();
      const path = this.#path(key);
      Deno.mkdirSync(join(this.dir, key.slice(0, 2)), { recursive: true });
      const temporary = `${path}.${Deno.pid}.${
        Math.random().toString(36).slice(2)
      }.tmp`;
      Deno.writeFileSync(temporary, bytes);
      Deno.renameSync(temporary, path);
    } catch (error) {
      throw this.#error(error);
    }
  }

  #prepare(): void {
    if (this.#ready) return;
    Deno.mkdirSync(this.dir!, { recursive: true });
    const marker = join(this.dir!, CACHE_MARKER);
    try {
      Deno.statSync(marker);
    } catch {
      Deno.writeTextFileSync(
        marker,
        JSON.stringify({
          description: "Preprocessed spectrograms and decoded frames of " +
            "the CAMDrop toolkit's on-disk datasets; safe to delete.",
          format: 1,
        }) + "\n",
      );
    }
    this.#ready = true;
  }

  #error(error: unknown): Error {
    return new Error(
      `Preprocessing cache ${this.dir} failed: ${
        (error as Error).message
      }. Use another cache folder (--cache-dir) or turn caching off ` +
        `(cacheDir: null).`,
    );
  }
}

/** Entries removed by {@linkcode clearPreprocessCache}. */
export interface ClearedCache {
  /** Entry files removed. */
  files: number;
  /** Their total size in bytes. */
  bytes: number;
}

const ENTRY_FOLDER = /^[0-9a-f]{2}$/;
const ENTRY_FILE = /^[0-9a-f]{64}\.bin(\..+\.tmp)?$/;

/**
 * Deletes the entries of a preprocessing cache folder, then the folder
 * itself if nothing else is left in it. Only files that the cache writes
 * are removed, and only in a folder that contains {@linkcode CACHE_MARKER}.
 *
 * @returns The count and size of removed entries; zero for a folder that
 * does not exist.
 * @throws {Error} If the folder exists but is not marked as a cache.
 */
export function clearPreprocessCache(dir: string): ClearedCache {
  const cleared: ClearedCache = { files: 0, bytes: 0 };
  try {
    Deno.statSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return cleared;
    throw error;
  }
  const marker = join(dir, CACHE_MARKER);
  try {
    Deno.statSync(marker);
  } catch {
    throw new Error(
      `${dir} is not a preprocessing cache (it has no ${CACHE_MARKER}), so ` +
        `nothing was deleted. Check the --cache-dir value.`,
    );
  }

  for (const folder of Deno.readDirSync(dir)) {
    if (!folder.isDirectory || !ENTRY_FOLDER.test(folder.name)) continue;
    const path = join(dir, folder.name);
    for (const file of Deno.readDirSync(path)) {
      if (!file.isFile || !ENTRY_FILE.test(file.name)) continue;
      const entry = join(path, file.name);
      cleared.bytes += Deno.statSync(entry).size;
      Deno.removeSync(entry);
      cleared.files++;
    }
    removeIfEmpty(path);
  }
  Deno.removeSync(marker);
  removeIfEmpty(dir);
  return cleared;
}

function removeIfEmpty(dir: string): void {
  if ([...Deno.readDirSync(dir)].length === 0) Deno.removeSync(dir);
}
