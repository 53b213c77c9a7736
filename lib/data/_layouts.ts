/**
 * Split files of the on-disk layouts (CREMA-D, AVE, Kinetics-Sounds and a
 * manifest CSV), parsed into sample lists with absolute media paths. Every
 * error names the file and line and states what was expected.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Split } from "./types.ts";

/** On-disk layouts that {@linkcode parseLayout} reads. */
export const DISK_DATASET_KINDS = ["cremad", "ave", "ks", "manifest"] as const;

/** An on-disk layout name. */
export type DiskDatasetKind = typeof DISK_DATASET_KINDS[number];

/** CREMA-D emotion codes; index i is label i. */
export const CREMAD_EMOTIONS = Object.freeze(
  ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"] as const,
);

/** Columns a manifest CSV must have in its header. */
export const MANIFEST_COLUMNS = Object.freeze(
  ["split", "label", "audio", "frames"] as const,
);

/** One clip listed in a split file. */
export interface SampleEntry {
  /** Clip or video id. */
  id: string;
  /** Class index. */
  label: number;
  /** Absolute path of the WAV file. */
  audio: string;
  /** Absolute path of the frame folder, or of a single JPEG. */
  frames: string;
  /** Source file and line, such as `train.csv line 4`. */
  source: string;
}

/** File and folder names of a layout, relative to the dataset root. */
export interface LayoutPaths {
  /** Split files; a missing `val` means "carve one out of train". */
  splitFiles: Partial<Record<Split, string>>;
  /** Split files that must exist (the others are used when present). */
  requiredSplits: readonly Split[];
  /** Folder of `<id>.wav` files. */
  audioDir: string;
  /** Folder of `<id>/` frame folders. */
  framesDir: string;
  /** File with one class name per line, or undefined for none. */
  classList?: string;
}

/** The parsed split files of one dataset. */
export interface ParsedLayout {
  classNames: string[];
  /** Entries per split; `val` is undefined when the layout has none. */
  splits: { train: SampleEntry[]; val?: SampleEntry[]; test: SampleEntry[] };
  /** Absolute paths of every file read (split files, class list). */
  files: string[];
}

interface Line {
  text: string;
  number: number;
}

interface SplitText {
  split: Split;
  path: string;
  lines: Line[];
}

/** Error for a malformed line: names the file, the line and the format. */
function lineError(path: string, line: Line, expected: string): Error {
  const shown = line.text.length > 120
    ? `${line.text.slice(0, 120)}...`
    : line.text;
  return new Error(
    `${path} line ${line.number}: expected ${expected}, got ` +
      `${JSON.stringify(shown)}.`,
  );
}

function readLines(path: string): Line[] {
  const text = readFileSync(path, "utf8");
  const lines: Line[] = [];
  text.split("\n").forEach((raw, i) => {
    const trimmed = raw.replace(/\r$/, "").trim();
    if (trimmed !== "") lines.push({ text: trimmed, number: i + 1 });
  });
  return lines;
}

function readSplitFiles(
  root: string,
  paths: LayoutPaths,
  kind: DiskDatasetKind,
): SplitText[] {
  const texts: SplitText[] = [];
  for (const split of ["train", "val", "test"] as const) {
    const name = paths.splitFiles[split];
    if (name === undefined) continue;
    const path = resolve(root, name);
    if (!existsSync(path)) {
      if (!paths.requiredSplits.includes(split)) continue;
      throw new Error(
        `Split file not found: ${path} (the ${split} split of the ${kind} ` +
          `layout). Check the data root, or set splitFiles.${split} to the ` +
          `file name used.`,
      );
    }
    texts.push({ split, path, lines: readLines(path) });
  }
  return texts;
}

// Reads an explicit class list: one name per line, blank lines ignored.
function readClassList(path: string): string[] {
  const names = readLines(path).map((line) => line.text);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new Error(`Class list ${path} names class "${name}" twice.`);
    }
    seen.add(name);
  }
  if (names.length === 0) throw new Error(`Class list ${path} is empty.`);
  return names;
}

function toSplits(
  texts: SplitText[],
  entries: Map<Split, SampleEntry[]>,
): ParsedLayout["splits"] {
  const has = (split: Split) => texts.some((t) => t.split === split);
  return {
    train: entries.get("train") ?? [],
    val: has("val") ? entries.get("val") ?? [] : undefined,
    test: entries.get("test") ?? [],
  };
}

function parseCremad(root: string, paths: LayoutPaths): ParsedLayout {
  const texts = readSplitFiles(root, paths, "cremad");
  const codes: readonly string[] = CREMAD_EMOTIONS;
  const entries = new Map<Split, SampleEntry[]>();
  for (const { split, path, lines } of texts) {
    const list: SampleEntry[] = [];
    for (const line of lines) {
      const fields = line.text.split(",").map((field) => field.trim());
      if (fields.length !== 2 || fields[0] === "") {
        throw lineError(path, line, '"clip,emotion" (2 fields)');
      }
      const [clip, emotion] = fields;
      const label = codes.indexOf(emotion.toUpperCase());
      if (label < 0) {
        throw new Error(
          `${path} line ${line.number}: emotion "${emotion}" is not a ` +
            `CREMA-D class; expected one of ${codes.join(", ")}.`,
        );
      }
      list.push({
        id: clip,
        label,
        audio: join(root, paths.audioDir, `${clip}.wav`),
        frames: join(root, paths.framesDir, clip),
        source: `${basename(path)} line ${line.number}`,
      });
    }
    entries.set(split, list);
  }
  return {
    classNames: [...CREMAD_EMOTIONS],
    splits: toSplits(texts, entries),
    files: texts.map((t) => t.path),
  };
}

function labelFromList(
  classNames: string[],
  name: string,
  path: string,
  line: Line,
): number {
  const label = classNames.indexOf(name);
  if (label < 0) {
    throw new Error(
      `${path} line ${line.number}: class "${name}" is not in the class ` +
        `list (${classNames.length} classes: ${
          classNames.slice(0, 5).join(", ")
        }${classNames.length > 5 ? ", ..." : ""}).`,
    );
  }
  return label;
}

function parseAve(root: string, paths: LayoutPaths): ParsedLayout {
  const texts = readSplitFiles(root, paths, "ave");
  const expected = '"Category&VideoId&Quality&Start&End" (5 fields)';
  const rows: { split: Split; path: string; line: Line; fields: string[] }[] =
    [];
  for (const { split, path, lines } of texts) {
    for (const line of lines) {
      const fields = line.text.split("&").map((field) => field.trim());
      // The official Annotations.txt starts with a header line.
      if (line === lines[0] && /^category$/i.test(fields[0])) continue;
      const [category, videoId, , start, end] = fields;
      if (
        fields.length !== 5 || category === "" || videoId === "" ||
        !Number.isFinite(Number(start)) || !Number.isFinite(Number(end)) ||
        start === "" || end === ""
      ) {
        throw lineError(path, line, expected);
      }
      rows.push({ split, path, line, fields });
    }
  }
  const classList = listedClasses(root, paths);
  const classNames = classList ??
    [...new Set(rows.map((row) => row.fields[0]))].sort();
  const entries = new Map<Split, SampleEntry[]>();
  for (const { split, path, line, fields } of rows) {
    const [category, videoId] = fields;
    const list = entries.get(split) ?? [];
    list.push({
      id: videoId,
      label: labelFromList(classNames, category, path, line),
      audio: join(root, paths.audioDir, `${videoId}.wav`),
      frames: join(root, paths.framesDir, videoId),
      source: `${basename(path)} line ${line.number}`,
    });
    entries.set(split, list);
  }
  return {
    classNames,
    splits: toSplits(texts, entries),
    files: [
      ...texts.map((t) => t.path),
      ...(paths.classList ? [resolve(root, paths.classList)] : []),
    ],
  };
}

function listedClasses(root: string, paths: LayoutPaths): string[] | undefined {
  if (paths.classList === undefined) return undefined;
  return readClassList(resolve(root, paths.classList));
}

const INDEX_PATTERN = /^\d+$/;

// Kinetics-Sounds lines come in two forms, chosen per file by its first
// line: "<id>,...,<label index>" (last field an integer) or "<class>,<id>".
function parseKinetics(root: string, paths: LayoutPaths): ParsedLayout {
  const texts = readSplitFiles(root, paths, "ks");
  const classList = listedClasses(root, paths);
  const rows: {
    split: Split;
    path: string;
    line: Line;
    id: string;
    index?: number;
    name?: string;
  }[] = [];
  for (const { split, path, lines } of texts) {
    if (lines.length === 0) continue;
    const first = lines[0].text.split(",");
    const indexForm = first.length >= 2 &&
      INDEX_PATTERN.test(first[first.length - 1].trim());
    for (const line of lines) {
      const fields = line.text.split(",").map((field) => field.trim());
      if (indexForm) {
        const last = fields[fields.length - 1];
        if (
          fields.length < 2 || fields[0] === "" || !INDEX_PATTERN.test(last)
        ) {
          throw lineError(
            path,
            line,
            '"<id>,...,<label index>" like line 1 (last field a ' +
              "non-negative integer)",
          );
        }
        rows.push({ split, path, line, id: fields[0], index: Number(last) });
      } else {
        if (fields.length !== 2 || fields[0] === "" || fields[1] === "") {
          throw lineError(path, line, '"<class>,<id>" (2 fields) like line 1');
        }
        rows.push({ split, path, line, id: fields[1], name: fields[0] });
      }
    }
  }

  let classNames: string[];
  if (classList !== undefined) {
    classNames = classList;
  } else if (rows.some((row) => row.name !== undefined)) {
    classNames = [
      ...new Set(
        rows.flatMap((row) => row.name === undefined ? [] : [row.name]),
      ),
    ].sort();
  } else {
    const count = Math.max(0, ...rows.map((row) => row.index! + 1));
    classNames = Array.from({ length: count }, (_, i) => String(i));
  }
  if (
    classList === undefined && rows.some((row) => row.name !== undefined) &&
    rows.some((row) => row.index !== undefined)
  ) {
    throw new Error(
      `Kinetics-Sounds split files mix "<class>,<id>" and ` +
        `"<id>,...,<label index>" lines; label indices cannot be matched ` +
        `to class names without a class list. Add ${
          join(root, "classes.txt")
        } (one class name per line, in index order) or use one form.`,
    );
  }

  const entries = new Map<Split, SampleEntry[]>();
  for (const row of rows) {
    let label: number;
    if (row.name !== undefined) {
      label = labelFromList(classNames, row.name, row.path, row.line);
    } else {
      label = row.index!;
      if (label >= classNames.length) {
        throw new Error(
          `${row.path} line ${row.line.number}: label index ${label} is ` +
            `outside the class list; expected 0 to ${
              classNames.length - 1
            } (${classNames.length} classes).`,
        );
      }
    }
    const list = entries.get(row.split) ?? [];
    list.push({
      id: row.id,
      label,
      audio: join(root, paths.audioDir, `${row.id}.wav`),
      frames: join(root, paths.framesDir, row.id),
      source: `${basename(row.path)} line ${row.line.number}`,
    });
    entries.set(row.split, list);
  }
  return {
    classNames,
    splits: toSplits(texts, entries),
    files: [
      ...texts.map((t) => t.path),
      ...(paths.classList ? [resolve(root, paths.classList)] : []),
    ],
  };
}

/**
 * Splits one CSV line into fields; a field in double quotes may hold
 * commas, and `""` inside quotes is one quote character.
 *
 * @returns The fields, or undefined when a quote is left open.
 */
export function splitCsvLine(text: string): string[] | undefined {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"' && field.trim() === "") {
      quoted = true;
      field = "";
    } else if (char === ",") {
      fields.push(field.trim());
      field = "";
    } else {
      field += char;
    }
  }
  if (quoted) return undefined;
  fields.push(field.trim());
  return fields;
}

function parseManifest(manifest: string, paths: LayoutPaths): ParsedLayout {
  if (!existsSync(manifest)) {
    throw new Error(
      `Manifest not found: ${manifest}. Pass the manifest CSV, or a folder ` +
        `that holds manifest.csv, as the data root.`,
    );
  }
  const base = dirname(manifest);
  const lines = readLines(manifest);
  const header = lines.length > 0 ? splitCsvLine(lines[0].text) : undefined;
  const columns = new Map<string, number>();
  header?.forEach((name, i) => columns.set(name.toLowerCase(), i));
  const missing = MANIFEST_COLUMNS.filter((name) => !columns.has(name));
  if (header === undefined || missing.length > 0) {
    throw lineError(
      manifest,
      lines[0] ?? { text: "", number: 1 },
      `a header with the columns ${MANIFEST_COLUMNS.join(",")} (missing: ` +
        `${missing.join(", ")})`,
    );
  }

  const rows: { line: Line; fields: Record<string, string> }[] = [];
  for (const line of lines.slice(1)) {
    const values = splitCsvLine(line.text);
    if (values === undefined || values.length !== header.length) {
      throw lineError(
        manifest,
        line,
        `${header.length} comma-separated fields (${header.join(",")})`,
      );
    }
    const fields: Record<string, string> = {};
    for (const name of MANIFEST_COLUMNS) {
      fields[name] = values[columns.get(name)!];
    }
    if (!["train", "val", "test"].includes(fields.split)) {
      throw lineError(manifest, line, 'split "train", "val" or "test"');
    }
    if (fields.label === "" || fields.audio === "" || fields.frames === "") {
      throw lineError(
        manifest,
        line,
        "a label, an audio path and a frames path",
      );
    }
    rows.push({ line, fields });
  }

  // Labels are class names sorted by name, or class indices when every
  // label is a non-negative integer.
  const classList = paths.classList === undefined
    ? undefined
    : readClassList(resolve(base, paths.classList));
  const indexForm = classList === undefined &&
    rows.every((row) => INDEX_PATTERN.test(row.fields.label));
  let classNames: string[];
  if (classList !== undefined) {
    classNames = classList;
  } else if (indexForm) {
    const count = Math.max(
      0,
      ...rows.map((row) => Number(row.fields.label) + 1),
    );
    classNames = Array.from({ length: count }, (_, i) => String(i));
  } else {
    classNames = [...new Set(rows.map((row) => row.fields.label))].sort();
  }

  const at = (path: string) => isAbsolute(path) ? path : join(base, path);
  const entries = new Map<Split, SampleEntry[]>();
  for (const { line, fields } of rows) {
    const split = fields.split as Split;
    const list = entries.get(split) ?? [];
    list.push({
      id: fields.audio.replace(/\.[^./\\]*$/, ""),
      label: indexForm
        ? Number(fields.label)
        : labelFromList(classNames, fields.label, manifest, line),
      audio: at(fields.audio),
      frames: at(fields.frames),
      source: `${basename(manifest)} line ${line.number}`,
    });
    entries.set(split, list);
  }
  if ((entries.get("train") ?? []).length === 0) {
    throw new Error(`Manifest ${manifest} lists no "train" rows.`);
  }
  if ((entries.get("test") ?? []).length === 0) {
    throw new Error(`Manifest ${manifest} lists no "test" rows.`);
  }
  return {
    classNames,
    splits: {
      train: entries.get("train")!,
      val: entries.get("val"),
      test: entries.get("test")!,
    },
    files: [manifest, ...(classList ? [resolve(base, paths.classList!)] : [])],
  };
}

/**
 * Parses the split files of a layout.
 *
 * @param kind Layout name.
 * @param root Dataset folder; for "manifest", the manifest CSV itself.
 * @param paths File and folder names inside `root`.
 * @throws {Error} If a split file is missing or a line is malformed or
 * names an unknown class; the message names the file and line.
 */
export function parseLayout(
  kind: DiskDatasetKind,
  root: string,
  paths: LayoutPaths,
): ParsedLayout {
  switch (kind) {
    case "cremad":
      return parseCremad(root, paths);
    case "ave":
      return parseAve(root, paths);
    case "ks":
      return parseKinetics(root, paths);
    case "manifest":
      return parseManifest(root, paths);
  }
}
