/**
 * Log-magnitude short-time Fourier transform, the audio input of the
 * models: log(|STFT| + epsilon) with a periodic Hann window as long as the
 * FFT and no centre padding. With the defaults (n_fft 512, hop 159) a 3 s
 * clip at 16 kHz gives 257 x 299 and a 10 s clip 257 x 1004. The bins are
 * linear frequency bins, not mel bands.
 *
 * @module
 */

import FFT from "fft.js";

/** Settings of {@linkcode logSpectrogram}. */
export interface SpectrogramOptions {
  /**
   * FFT size and window length in samples; a power of two, at least 4.
   * @default {512}
   */
  nFft?: number;
  /**
   * Samples between the starts of consecutive frames.
   * @default {159}
   */
  hopLength?: number;
  /**
   * Added to the magnitude before the natural logarithm, so silence maps
   * to log(epsilon) instead of minus infinity.
   * @default {1e-7}
   */
  epsilon?: number;
}

/** A spectrogram stored row-major as [bins, frames]. */
export interface Spectrogram {
  /** Values, shape [F, W] row-major: `data[f * frames + w]`. */
  data: Float32Array;
  /** Frequency bins F, `nFft / 2 + 1`. */
  bins: number;
  /** Time frames W, `floor((length - nFft) / hopLength) + 1`. */
  frames: number;
}

/** Settings used when {@linkcode SpectrogramOptions} leaves them out. */
export const SPECTROGRAM_DEFAULTS: Readonly<Required<SpectrogramOptions>> =
  Object.freeze({ nFft: 512, hopLength: 159, epsilon: 1e-7 });

interface Transform {
  fft: FFT;
  window: Float64Array;
  frame: Float64Array;
  spectrum: Float64Array;
}

// One FFT plan per size; building the twiddle table costs more than a frame.
const transforms = new Map<number, Transform>();

function getTransform(nFft: number): Transform {
  let transform = transforms.get(nFft);
  if (transform === undefined) {
    // Periodic Hann: the window of length nFft + 1 without its last point,
    // as torch.hann_window(periodic=True) and scipy's "hann" STFT default.
    const window = new Float64Array(nFft);
    for (let n = 0; n < nFft; n++) {
      window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / nFft);
    }
    transform = {
      fft: new FFT(nFft),
      window,
      frame: new Float64Array(nFft),
      spectrum: new Float64Array(2 * nFft),
    };
    transforms.set(nFft, transform);
  }
  return transform;
}

function resolveOptions(
  options: SpectrogramOptions,
): Required<SpectrogramOptions> {
  const resolved = { ...SPECTROGRAM_DEFAULTS, ...options };
  const { nFft, hopLength, epsilon } = resolved;
  if (!Number.isInteger(nFft) || nFft < 4 || (nFft & (nFft - 1)) !== 0) {
    throw new RangeError(
      `logSpectrogram: nFft must be a power of two of at least 4, got ${nFft}`,
    );
  }
  if (!Number.isInteger(hopLength) || hopLength < 1) {
    throw new RangeError(
      `logSpectrogram: hopLength must be a positive integer, got ${hopLength}`,
    );
  }
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(
      `logSpectrogram: epsilon must be a positive finite number, got ${epsilon}`,
    );
  }
  return resolved;
}

/**
 * Computes log(|STFT| + epsilon) of a mono signal. Frames start at 0,
 * hopLength, 2 * hopLength, ... and the last frame ends inside the signal,
 * so trailing samples that do not fill a frame are dropped.
 *
 * @param signal Samples, any rate; the loaders use 16 kHz in [-1, 1].
 * @param options FFT size, hop and epsilon.
 * @returns The spectrogram, shape [nFft / 2 + 1, frames] row-major.
 * @throws {RangeError} If an option is invalid or the signal is shorter
 * than one window (`nFft` samples).
 *
 * @example
 * ```ts
 * import { logSpectrogram } from "./spectrogram.ts";
 *
 * const { bins, frames } = logSpectrogram(new Float32Array(16000));
 * console.assert(bins === 257 && frames === 98);
 * ```
 */
export function logSpectrogram(
  signal: Float32Array,
  options: SpectrogramOptions = {},
): Spectrogram {
  const { nFft, hopLength, epsilon } = resolveOptions(options);
  if (signal.length < nFft) {
    throw new RangeError(
      `logSpectrogram: signal has ${signal.length} samples, fewer than one ` +
        `window of nFft = ${nFft}; pad or tile it first`,
    );
  }
  const bins = nFft / 2 + 1;
  const frames = Math.floor((signal.length - nFft) / hopLength) + 1;
  const data = new Float32Array(bins * frames);
  const { fft, window, frame, spectrum } = getTransform(nFft);

  for (let w = 0; w < frames; w++) {
    const start = w * hopLength;
    for (let n = 0; n < nFft; n++) {
      frame[n] = signal[start + n] * window[n];
    }

    // realTransform fills bins 0..nFft/2 as interleaved (re, im) pairs.
    fft.realTransform(spectrum, frame);
    for (let f = 0; f < bins; f++) {
      const re = spectrum[2 * f];
      const im = spectrum[2 * f + 1];
      data[f * frames + w] = Math.log(Math.sqrt(re * re + im * im) + epsilon);
    }
  }
  return { data, bins, frames };
}

/**
 * Returns the number of frames {@linkcode logSpectrogram} gives for a signal
 * of `length` samples, or 0 when the signal is shorter than one window.
 */
export function spectrogramFrames(
  length: number,
  options: SpectrogramOptions = {},
): number {
  const { nFft, hopLength } = resolveOptions(options);
  return length < nFft ? 0 : Math.floor((length - nFft) / hopLength) + 1;
}
