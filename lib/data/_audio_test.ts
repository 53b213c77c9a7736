import assert from "node:assert/strict";
import wavefile from "wavefile";
import { decodeWav, fitToLength, resample } from "./_audio.ts";
import { logSpectrogram } from "./spectrogram.ts";

function tone(frequency: number, rate: number, seconds: number): Float32Array {
  const samples = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < samples.length; i++) {
    samples[i] = Math.sin((2 * Math.PI * frequency * i) / rate);
  }
  return samples;
}

function rms(values: Float32Array, from = 0, to = values.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += values[i] * values[i];
  return Math.sqrt(sum / (to - from));
}

function wavBytes(
  channels: number,
  rate: number,
  depth: string,
  samples: number[] | number[][],
): Uint8Array {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, rate, depth, samples);
  return wav.toBuffer();
}

Deno.test("decodeWav() scales 16-bit PCM", () => {
  const clip = decodeWav(wavBytes(1, 8000, "16", [16384, -32768, 0]), "a.wav");
  assert.equal(clip.sampleRate, 8000);
  assert.deepEqual([...clip.samples], [0.5, -1, 0]);
});

Deno.test("decodeWav() averages stereo to mono", () => {
  const bytes = wavBytes(2, 16000, "16", [[16384, 0], [0, -16384]]);
  const clip = decodeWav(bytes, "stereo.wav");
  assert.deepEqual([...clip.samples], [0.25, -0.25]);
});

Deno.test("decodeWav() reads 8-bit and float WAV", () => {
  const unsigned = decodeWav(wavBytes(1, 16000, "8", [192, 64, 128]), "u8");
  assert.deepEqual([...unsigned.samples], [0.5, -0.5, 0]);
  const float = decodeWav(wavBytes(1, 16000, "32f", [0.25, -0.75]), "f32");
  assert.deepEqual([...float.samples], [0.25, -0.75]);
});

Deno.test("decodeWav() names a truncated file", () => {
  const bytes = wavBytes(1, 16000, "16", Array(1000).fill(100));
  assert.throws(
    () => decodeWav(bytes.subarray(0, 600), "/data/cut.wav"),
    /Truncated WAV file \/data\/cut\.wav: the data chunk declares 2000 bytes/,
  );
});

Deno.test("decodeWav() names a file that is not WAV", () => {
  const bytes = new TextEncoder().encode("ID3 this is an mp3");
  assert.throws(
    () => decodeWav(bytes, "/data/song.wav"),
    /Cannot decode WAV file \/data\/song\.wav/,
  );
});

Deno.test("decodeWav() rejects an empty data chunk", () => {
  assert.throws(
    () => decodeWav(wavBytes(1, 16000, "16", []), "/data/empty.wav"),
    /Empty WAV file \/data\/empty\.wav/,
  );
});

Deno.test("resample() keeps equal rates unchanged", () => {
  const signal = tone(440, 16000, 0.1);
  assert.equal(resample(signal, 16000, 16000), signal);
});

Deno.test("resample() upsamples a tone", () => {
  const output = resample(tone(440, 8000, 0.5), 8000, 16000);
  const expected = tone(440, 16000, 0.5);
  assert.equal(output.length, expected.length);
  // Away from the ends, where the kernel runs past the signal.
  let maxError = 0;
  for (let i = 400; i < output.length - 400; i++) {
    maxError = Math.max(maxError, Math.abs(output[i] - expected[i]));
  }
  assert.ok(maxError < 0.01, `max error ${maxError}`);
});

Deno.test("resample() downsamples 44.1 kHz to 16 kHz", () => {
  const output = resample(tone(1000, 44100, 0.5), 44100, 16000);
  const expected = tone(1000, 16000, 0.5);
  assert.equal(output.length, 8000);
  let maxError = 0;
  for (let i = 400; i < output.length - 400; i++) {
    maxError = Math.max(maxError, Math.abs(output[i] - expected[i]));
  }
  assert.ok(maxError < 0.02, `max error ${maxError}`);
});

Deno.test("resample() suppresses tones above the new Nyquist", () => {
  // 12 kHz is above 8 kHz, the Nyquist frequency of 16 kHz. Without a
  // low-pass filter it would alias to 4 kHz at full amplitude (RMS 0.71).
  const output = resample(tone(12000, 44100, 0.5), 44100, 16000);
  const level = rms(output, 400, output.length - 400);
  assert.ok(level < 0.02, `aliased RMS ${level}`);
});

Deno.test("fitToLength() tiles a short clip", () => {
  const output = fitToLength(Float32Array.of(1, 2, 3), 8);
  assert.deepEqual([...output], [1, 2, 3, 1, 2, 3, 1, 2]);
});

Deno.test("fitToLength() crops a long clip", () => {
  const output = fitToLength(Float32Array.of(1, 2, 3, 4, 5), 3);
  assert.deepEqual([...output], [1, 2, 3]);
  assert.deepEqual([...fitToLength(Float32Array.of(7, 8), 2)], [7, 8]);
});

Deno.test("fitToLength() rejects an empty clip", () => {
  assert.throws(() => fitToLength(new Float32Array(0), 4), /empty clip/);
});

Deno.test("resample() handles rates without a small ratio", () => {
  // 44,099 and 16,000 share no factor: 16,000 phases, computed directly.
  const output = resample(tone(1000, 44099, 0.25), 44099, 16000);
  const expected = tone(1000, 16000, 0.25);
  assert.equal(output.length, expected.length);
  let maxError = 0;
  for (let i = 400; i < output.length - 400; i++) {
    maxError = Math.max(maxError, Math.abs(output[i] - expected[i]));
  }
  assert.ok(maxError < 0.02, `max error ${maxError}`);
});

Deno.test("clips of any length give the paper's shapes", () => {
  // Tile or crop to the target length, then the log spectrogram:
  // 3 s -> 257 x 299 and 10 s -> 257 x 1004, from 0.5 s to 12 s clips.
  const cases: [number, number, number][] = [
    [0.5, 3, 299],
    [3, 3, 299],
    [10, 10, 1004],
    [12, 10, 1004],
    [0.5, 10, 1004],
  ];
  for (const [seconds, target, frames] of cases) {
    const clip = Float32Array.from(
      { length: Math.round(seconds * 16000) },
      (_, i) => Math.sin(i * 0.05),
    );
    const fitted = fitToLength(clip, target * 16000);
    assert.equal(fitted.length, target * 16000);
    const spectrogram = logSpectrogram(fitted);
    assert.equal(spectrogram.bins, 257, `${seconds} s`);
    assert.equal(spectrogram.frames, frames, `${seconds} s to ${target} s`);
  }
});
