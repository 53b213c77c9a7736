/**
 * Audio preprocessing of the on-disk datasets: WAV decoding to mono
 * floats, band-limited resampling and tiling or cropping to a fixed
 * length.
 *
 * @module
 */

import wavefile from "wavefile";

/** A decoded mono clip. */
export interface MonoClip {
  /** Samples in [-1, 1]. */
  samples: Float32Array;
  /** Sample rate in Hz. */
  sampleRate: number;
}

// Full-scale value of each integer PCM bit depth wavefile reports.
const INTEGER_SCALE: Record<string, number> = {
  "8": 128,
  "16": 32768,
  "24": 8388608,
  "32": 2147483648,
};

/**
 * Decodes a PCM or IEEE-float WAV file and averages its channels to mono.
 *
 * @param bytes The whole file.
 * @param path File name used in error messages.
 * @throws {Error} If the file is not a WAV file, uses a compressed
 * encoding, is truncated (its data chunk is shorter than its header
 * states) or contains no samples. The message names `path`.
 */
export function decodeWav(bytes: Uint8Array, path: string): MonoClip {
  let wav: InstanceType<typeof wavefile.WaveFile>;
  try {
    wav = new wavefile.WaveFile(bytes);
  } catch (error) {
    throw new Error(
      `Cannot decode WAV file ${path}: ${(error as Error).message}. ` +
        `Convert it with ffmpeg -i IN -ac 1 -ar 16000 OUT.wav.`,
    );
  }
  const fmt = wav.fmt as { numChannels: number; sampleRate: number };
  const data = wav.data as { chunkSize: number; samples: Uint8Array };
  if (data.samples.length < data.chunkSize) {
    throw new Error(
      `Truncated WAV file ${path}: the data chunk declares ` +
        `${data.chunkSize} bytes but the file holds ${data.samples.length}.`,
    );
  }
  const depth = wav.bitDepth;
  const isFloat = depth === "32f" || depth === "64";
  if (!isFloat && INTEGER_SCALE[depth] === undefined) {
    throw new Error(
      `Unsupported WAV encoding in ${path}: bit depth code "${depth}"; ` +
        `expected 8, 16, 24 or 32-bit PCM or 32/64-bit float. Convert it ` +
        `with ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav.`,
    );
  }
  const channels = wav.getSamples(false, Float64Array) as unknown as
    | Float64Array
    | Float64Array[];
  const list = Array.isArray(channels) ? channels : [channels];
  const length = list[0]?.length ?? 0;
  if (length === 0 || !(fmt.sampleRate > 0)) {
    throw new Error(
      `Empty WAV file ${path}: ${length} samples at ${fmt.sampleRate} Hz.`,
    );
  }

  // Unsigned 8-bit PCM is centred on 128; the other integer depths are
  // signed. Float samples are already in [-1, 1].
  const offset = depth === "8" ? 128 : 0;
  const scale = isFloat ? 1 : INTEGER_SCALE[depth];
  const samples = new Float32Array(length);
  for (const channel of list) {
    for (let i = 0; i < length; i++) {
      samples[i] += (channel[i] - offset) / scale;
    }
  }
  if (list.length > 1) {
    for (let i = 0; i < length; i++) samples[i] /= list.length;
  }
  return { samples, sampleRate: fmt.sampleRate };
}

/** Zero crossings of the sinc kernel on each side of a resampled point. */
export const RESAMPLER_ZERO_CROSSINGS = 16;

/**
 * Resamples a signal with a Hann-windowed sinc kernel of
 * {@linkcode RESAMPLER_ZERO_CROSSINGS} zero crossings per side. When
 * downsampling, the kernel is widened so that its cut-off sits at the new
 * Nyquist frequency, which suppresses aliasing. Samples beyond the ends
 * count as zero.
 *
 * @param signal Input samples.
 * @param from Input rate in Hz.
 * @param to Output rate in Hz.
 * @returns `round(signal.length * to / from)` samples, or `signal` itself
 * when the rates are equal.
 */
export function resample(
  signal: Float32Array,
  from: number,
  to: number,
): Float32Array {
  if (!(from > 0) || !(to > 0)) {
    throw new RangeError(
      `resample: rates must be positive, got from ${from} and to ${to}`,
    );
  }
  if (from === to) return signal;
  const cutoff = Math.min(1, to / from); // fraction of the input Nyquist
  const radius = RESAMPLER_ZERO_CROSSINGS / cutoff; // in input samples
  const kernel = (distance: number) => {
    const x = Math.PI * cutoff * distance;
    const sinc = x === 0 ? 1 : Math.sin(x) / x;
    return cutoff * sinc *
      (0.5 + 0.5 * Math.cos((Math.PI * distance) / radius));
  };

  // Output sample n sits at input position n * from / to. With integer
  // rates that position's fractional part takes only `phases` values, so
  // the kernel weights are computed once per phase.
  const divisor = gcd(from, to);
  const step = from / divisor; // input samples per `phases` outputs
  const phases = to / divisor;
  const output = new Float32Array(Math.round((signal.length * to) / from));
  if (!Number.isInteger(step) || !Number.isInteger(phases) || phases > 4096) {
    for (let n = 0; n < output.length; n++) {
      const centre = (n * from) / to;
      const first = Math.max(0, Math.ceil(centre - radius));
      const last = Math.min(signal.length - 1, Math.floor(centre + radius));
      let sum = 0;
      for (let k = first; k <= last; k++) sum += signal[k] * kernel(k - centre);
      output[n] = sum;
    }
    return output;
  }

  const taps = 2 * Math.ceil(radius) + 1;
  const offsets = new Int32Array(phases); // first tap relative to floor(centre)
  const weights = new Float64Array(phases * taps);
  for (let p = 0; p < phases; p++) {
    const fraction = p / phases;
    offsets[p] = Math.ceil(fraction - radius);
    for (let j = 0; j < taps; j++) {
      const distance = offsets[p] + j - fraction;
      weights[p * taps + j] = Math.abs(distance) <= radius
        ? kernel(distance)
        : 0;
    }
  }
  for (let n = 0; n < output.length; n++) {
    const base = Math.floor((n * step) / phases);
    const p = (n * step) % phases;
    const first = base + offsets[p];
    const jStart = Math.max(0, -first);
    const jEnd = Math.min(taps, signal.length - first);
    let sum = 0;
    for (let j = jStart; j < jEnd; j++) {
      sum += signal[first + j] * weights[p * taps + j];
    }
    output[n] = sum;
  }
  return output;
}

function gcd(a: number, b: number): number {
  if (!Number.isInteger(a) || !Number.isInteger(b)) return 1;
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Repeats a clip shorter than `length` end to end, or keeps the first
 * `length` samples of a longer one.
 *
 * @throws {RangeError} If the clip is empty.
 */
export function fitToLength(
  signal: Float32Array,
  length: number,
): Float32Array {
  if (signal.length === 0) {
    throw new RangeError("fitToLength: cannot tile an empty clip");
  }
  if (signal.length >= length) return signal.slice(0, length);
  const output = new Float32Array(length);
  for (let start = 0; start < length; start += signal.length) {
    output.set(
      signal.subarray(0, Math.min(signal.length, length - start)),
      start,
    );
  }
  return output;
}
