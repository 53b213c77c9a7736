import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import {
  adjustContrast,
  fillNormal,
  gaussianBlur,
  meanPower,
  mixAtSnr,
  occlude,
  OCCLUSION_FILL,
  placeDigit,
} from "./_degrade.ts";

Deno.test("fillNormal() moments", () => {
  const values = fillNormal(new Random(3), new Float32Array(200_000));
  let mean = 0;
  let square = 0;
  for (const value of values) {
    mean += value;
    square += value * value;
  }
  mean /= values.length;
  const variance = square / values.length - mean * mean;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
  const inside = values.filter((value) => Math.abs(value) < 1).length;
  assert.ok(Math.abs(inside / values.length - 0.6827) < 0.005, `${inside}`);
});

Deno.test("mixAtSnr() sets the power ratio", () => {
  const speech = new Float32Array(1000).map((_, i) => Math.sin(i / 5));
  const speechPower = meanPower(speech);
  for (const snrDb of [-10, 0, 10]) {
    const mixed = speech.slice();
    const noise = fillNormal(new Random(snrDb + 100), new Float32Array(1000));
    mixAtSnr(mixed, noise, speechPower, snrDb);
    const added = mixed.map((value, i) => value - speech[i]);
    const measured = 10 * Math.log10(speechPower / meanPower(added));
    assert.ok(Math.abs(measured - snrDb) < 1e-3, `${snrDb} dB: ${measured}`);
  }
});

Deno.test("placeDigit() centres and scales", () => {
  const digit = new Uint8Array(28 * 28).fill(255);
  const at32 = placeDigit(digit, 28, 32, 0, 0);
  const lit32 = at32.filter((value) => value > 0.5).length;
  assert.equal(lit32, 28 * 28);
  assert.equal(at32[2 * 32 + 2], 1);
  assert.equal(at32[1 * 32 + 1], 0);

  // At 64 the digit is scaled by 2: a 56-pixel square with 4 pixels margin,
  // whose border pixels blend bilinearly with the black background.
  const at64 = placeDigit(digit, 28, 64, 0, 0);
  assert.equal(at64.filter((value) => value > 0.5).length, 56 * 56);
  assert.equal(at64[5 * 64 + 5], 1);
  assert.equal(at64[4 * 64 + 10], 0.75);

  const shifted = placeDigit(digit, 28, 32, 3, -2);
  assert.equal(shifted[0 * 32 + 5], 1);
  assert.equal(shifted[0 * 32 + 4], 0);
  assert.equal(shifted[27 * 32 + 31], 1);
  assert.equal(shifted[28 * 32 + 10], 0);
});

Deno.test("occlude() covers the requested area", () => {
  const image = new Float32Array(32 * 32);
  occlude(image, 32, 0.25, new Random(1));
  const covered = image.filter((value) => value === OCCLUSION_FILL).length;
  assert.equal(covered, 16 * 16);
});

Deno.test("gaussianBlur() keeps the sum away from edges", () => {
  const image = new Float32Array(32 * 32);
  image[16 * 32 + 16] = 1;
  gaussianBlur(image, 32, 1.5);
  const total = image.reduce((sum, value) => sum + value, 0);
  assert.ok(Math.abs(total - 1) < 1e-5, `sum ${total}`);
  assert.ok(image[16 * 32 + 16] < 0.1, "peak spread out");
  assert.ok(image[16 * 32 + 17] > 0, "neighbour lit");
});

Deno.test("adjustContrast() keeps the mean", () => {
  const image = new Float32Array([0, 0.2, 0.4, 1]);
  adjustContrast(image, 0.5);
  const expected = [0.2, 0.3, 0.4, 0.7];
  image.forEach((value, i) => {
    assert.ok(Math.abs(value - expected[i]) < 1e-6, `${i}: ${value}`);
  });
});
