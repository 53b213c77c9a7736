import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { logSpectrogram, spectrogramFrames } from "./spectrogram.ts";

// Float64 direct DFT of each windowed frame, written independently of the
// FFT code path: X[f] = sum_n x[n] w[n] exp(-2 pi i f n / N).
function referenceSpectrogram(
  signal: Float32Array,
  nFft: number,
  hop: number,
): { data: Float64Array; bins: number; frames: number } {
  const bins = nFft / 2 + 1;
  const frames = Math.floor((signal.length - nFft) / hop) + 1;
  const data = new Float64Array(bins * frames);
  for (let w = 0; w < frames; w++) {
    for (let f = 0; f < bins; f++) {
      let re = 0;
      let im = 0;
      for (let n = 0; n < nFft; n++) {
        const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / nFft);
        const x = signal[w * hop + n] * hann;
        const angle = (2 * Math.PI * f * n) / nFft;
        re += x * Math.cos(angle);
        im -= x * Math.sin(angle);
      }
      data[f * frames + w] = Math.log(Math.hypot(re, im) + 1e-7);
    }
  }
  return { data, bins, frames };
}

function noise(length: number, seed: number): Float32Array {
  const random = new Random(seed);
  const signal = new Float32Array(length);
  for (let i = 0; i < length; i++) signal[i] = random.next() * 2 - 1;
  return signal;
}

Deno.test("logSpectrogram() matches a direct DFT", () => {
  // A tone plus noise, 1,200 samples: 5 frames of 512 at hop 159.
  const signal = noise(1200, 7);
  for (let i = 0; i < signal.length; i++) {
    signal[i] = 0.3 * signal[i] + 0.5 * Math.sin(2 * Math.PI * 440 * i / 16000);
  }
  const actual = logSpectrogram(signal);
  const expected = referenceSpectrogram(signal, 512, 159);
  assert.equal(actual.bins, expected.bins);
  assert.equal(actual.frames, expected.frames);

  // Error measure: maximum absolute difference of the log magnitudes.
  let maxError = 0;
  for (let i = 0; i < expected.data.length; i++) {
    maxError = Math.max(maxError, Math.abs(actual.data[i] - expected.data[i]));
  }
  assert.ok(maxError < 1e-4, `max abs error ${maxError} >= 1e-4`);
});

Deno.test("logSpectrogram() layout is [bins, frames]", () => {
  // A pure tone at bin 32 (1 kHz at 16 kHz, nFft 512) must peak in row 32
  // of every column.
  const signal = new Float32Array(2000);
  for (let i = 0; i < signal.length; i++) {
    signal[i] = Math.sin((2 * Math.PI * 32 * i) / 512);
  }
  const { data, bins, frames } = logSpectrogram(signal);
  for (let w = 0; w < frames; w++) {
    let best = 0;
    for (let f = 1; f < bins; f++) {
      if (data[f * frames + w] > data[best * frames + w]) best = f;
    }
    assert.equal(best, 32, `frame ${w} peaks at bin ${best}`);
  }
});

Deno.test("logSpectrogram() shapes by clip length", () => {
  const cases = [
    { seconds: 0.5, frames: 48 },
    { seconds: 1, frames: 98 },
    { seconds: 3, frames: 299 },
    { seconds: 10, frames: 1004 },
  ];
  for (const { seconds, frames } of cases) {
    const length = seconds * 16000;
    const spectrogram = logSpectrogram(noise(length, 1));
    assert.equal(spectrogram.bins, 257, `${seconds} s bins`);
    assert.equal(spectrogram.frames, frames, `${seconds} s frames`);
    assert.equal(spectrogram.data.length, 257 * frames, `${seconds} s size`);
    assert.equal(spectrogramFrames(length), frames, `${seconds} s count`);
  }
});

Deno.test("logSpectrogram() silence is log(epsilon)", () => {
  const { data } = logSpectrogram(new Float32Array(512));
  for (const value of data) assert.equal(value, Math.fround(Math.log(1e-7)));
});

Deno.test("logSpectrogram() 10 s clip under 100 ms", () => {
  const signal = noise(160000, 3);
  logSpectrogram(signal);
  const start = performance.now();
  logSpectrogram(signal);
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
});

Deno.test("logSpectrogram() rejects short signals and bad options", () => {
  assert.throws(
    () => logSpectrogram(new Float32Array(511)),
    /511 samples, fewer than one window of nFft = 512/,
  );
  assert.equal(spectrogramFrames(511), 0);
  assert.throws(
    () => logSpectrogram(new Float32Array(1024), { nFft: 500 }),
    /nFft must be a power of two of at least 4, got 500/,
  );
  assert.throws(
    () => logSpectrogram(new Float32Array(1024), { hopLength: 0 }),
    /hopLength must be a positive integer, got 0/,
  );
  assert.throws(
    () => logSpectrogram(new Float32Array(1024), { epsilon: 0 }),
    /epsilon must be a positive finite number, got 0/,
  );
});
