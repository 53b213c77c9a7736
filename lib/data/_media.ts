/**
 * Media files of the on-disk datasets: which exist, their frame lists
 * (sorted by name) and the size and modification time that the content
 * hash and the preprocessing cache are keyed on.
 *
 * @module
 */

import type { SampleEntry } from "./_layouts.ts";

/** A file with the facts that identify its version. */
export interface MediaFile {
  /** Absolute path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time in milliseconds since the epoch (0 if unknown). */
  mtime: number;
}

/** The media of one sample. */
export interface SampleMedia {
  audio: MediaFile;
  /** Frames in name order; at least one. */
  frames: MediaFile[];
}

/** A sample whose media are incomplete. */
export interface MissingMedia {
  entry: SampleEntry;
  /** Path that was not found. */
  path: string;
  /** Problem found, such as "audio file not found". */
  reason: string;
}

const JPEG_PATTERN = /\.jpe?g$/i;

// Deno raises NotCapable when the process lacks read permission for a
// path; `deno task repro` grants it for the data root only.
function permissionError(path: string, error: unknown): Error {
  if (error instanceof Deno.errors.NotCapable) {
    return new Error(
      `Cannot read ${path}: no read permission. deno task repro allows ` +
        `reading under --data-root (a manifest's folder) only, so keep ` +
        `the media there.`,
    );
  }
  return error as Error;
}

function statFile(path: string): MediaFile | undefined {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) return undefined;
    return { path, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw permissionError(path, error);
  }
}

function listFrames(path: string): MediaFile[] | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw permissionError(path, error);
  }
  if (info.isFile) {
    const file = statFile(path);
    return file === undefined ? undefined : [file];
  }
  const names: string[] = [];
  for (const item of Deno.readDirSync(path)) {
    if (item.isFile && JPEG_PATTERN.test(item.name)) names.push(item.name);
  }
  // Plain code-unit order, so 00002.jpg comes before 00010.jpg only when
  // names are zero-padded, as ffmpeg's %05d pattern writes them.
  names.sort();
  const files: MediaFile[] = [];
  for (const name of names) {
    const file = statFile(`${path}/${name}`);
    if (file !== undefined) files.push(file);
  }
  return files;
}

/**
 * Looks up the audio file and frames of one sample.
 *
 * @returns The media, or what is missing.
 */
export function findMedia(entry: SampleEntry): SampleMedia | MissingMedia {
  const audio = statFile(entry.audio);
  if (audio === undefined) {
    return { entry, path: entry.audio, reason: "audio file not found" };
  }
  const frames = listFrames(entry.frames);
  if (frames === undefined) {
    return { entry, path: entry.frames, reason: "frames not found" };
  }
  if (frames.length === 0) {
    return { entry, path: entry.frames, reason: "no .jpg frames in folder" };
  }
  return { audio, frames };
}

/** Tells a {@linkcode MissingMedia} from a {@linkcode SampleMedia}. */
export function isMissing(
  media: SampleMedia | MissingMedia,
): media is MissingMedia {
  return "reason" in media;
}
