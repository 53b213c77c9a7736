import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { Random } from "../_random.ts";
import {
  CROP_RATIO,
  CROP_SCALE,
  decodeJpeg,
  flipHorizontal,
  IMAGENET_MEAN,
  IMAGENET_STD,
  normaliseImageNet,
  randomCropBox,
  resizeCrop,
  type RgbImage,
} from "./_image.ts";

function encode(width: number, height: number, grey: number): Uint8Array {
  const data = new Uint8Array(width * height * 4).fill(grey);
  return jpeg.encode({ width, height, data }, 100).data;
}

function image(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  return { width, height, data };
}

Deno.test("decodeJpeg() returns RGB pixels", () => {
  const decoded = decodeJpeg(encode(16, 8, 200), "a.jpg");
  assert.equal(decoded.width, 16);
  assert.equal(decoded.height, 8);
  assert.equal(decoded.data.length, 16 * 8 * 3);
  assert.ok(Math.abs(decoded.data[0] - 200) <= 2, `got ${decoded.data[0]}`);
});

Deno.test("decodeJpeg() names a truncated file", () => {
  const bytes = encode(64, 64, 90);
  assert.throws(
    () => decodeJpeg(bytes.subarray(0, bytes.length >> 1), "/f/00001.jpg"),
    /Cannot decode JPEG file \/f\/00001\.jpg/,
  );
});

Deno.test("decodeJpeg() names a file that is not JPEG", () => {
  assert.throws(
    () => decodeJpeg(new TextEncoder().encode("<html>"), "/f/page.jpg"),
    /Cannot decode JPEG file \/f\/page\.jpg/,
  );
});

Deno.test("resizeCrop() copies at equal size", () => {
  const source = image(5, 5);
  const box = { left: 0, top: 0, width: 5, height: 5 };
  const output = resizeCrop(source, box, 5);
  assert.deepEqual([...output], [...source.data]);
});

Deno.test("resizeCrop() filters when shrinking", () => {
  // Vertical stripes, one white column in four, shrunk 4x: an antialiased
  // resize gives the mean (255 / 4) away from the edges, where plain
  // bilinear sampling would read two black columns and give 0.
  const side = 16;
  const data = new Uint8Array(side * side * 3);
  for (let p = 0; p < side * side; p++) {
    if ((p % side) % 4 === 0) data.fill(255, p * 3, p * 3 + 3);
  }
  const box = { left: 0, top: 0, width: side, height: side };
  const output = resizeCrop({ width: side, height: side, data }, box, 4);
  for (let y = 0; y < 4; y++) {
    for (const x of [1, 2]) {
      const value = output[(y * 4 + x) * 3];
      assert.ok(Math.abs(value - 63.75) < 1e-3, `(${x}, ${y}): ${value}`);
    }
  }
});

Deno.test("resizeCrop() reads only the box", () => {
  // Left half red, right half blue; a box inside the right half is blue.
  const width = 8;
  const data = new Uint8Array(width * 4 * 3);
  for (let p = 0; p < width * 4; p++) {
    const right = p % width >= width / 2;
    data[p * 3 + (right ? 2 : 0)] = 255;
  }
  const output = resizeCrop({ width, height: 4, data }, {
    left: 4,
    top: 1,
    width: 4,
    height: 2,
  }, 3);
  for (let p = 0; p < 9; p++) {
    assert.equal(output[p * 3], 0, `red at ${p}`);
    assert.ok(Math.abs(output[p * 3 + 2] - 255) < 1e-3, `blue at ${p}`);
  }
});

Deno.test("randomCropBox() stays inside the ranges", () => {
  const random = new Random(3);
  for (let i = 0; i < 200; i++) {
    const box = randomCropBox(120, 90, random);
    assert.ok(box.left >= 0, `left ${box.left}`);
    assert.ok(box.left + box.width <= 120, `right ${box.left + box.width}`);
    assert.ok(box.top >= 0, `top ${box.top}`);
    assert.ok(box.top + box.height <= 90, `bottom ${box.top + box.height}`);
    const area = (box.width * box.height) / (120 * 90);
    assert.ok(area >= CROP_SCALE[0] * 0.9, `area ${area}`);
    assert.ok(area <= 1, `area ${area}`);
    const ratio = box.width / box.height;
    // Rounding to whole pixels moves the ratio a little past the range.
    assert.ok(ratio >= CROP_RATIO[0] * 0.9, `ratio ${ratio}`);
    assert.ok(ratio <= CROP_RATIO[1] * 1.1, `ratio ${ratio}`);
  }
});

Deno.test("randomCropBox() falls back to a centre crop", () => {
  // A 1-pixel-high strip: no crop with ratio <= 4/3 fits 10 times in a row,
  // so the fallback takes the centred 1 x 1 (4/3 of the height, rounded).
  const box = randomCropBox(100, 1, new Random(1));
  assert.deepEqual(box, { left: 49, top: 0, width: 1, height: 1 });
});

Deno.test("flipHorizontal() mirrors rows", () => {
  const pixels = Float32Array.from({ length: 3 * 3 * 3 }, (_, i) => i);
  flipHorizontal(pixels, 3);
  assert.deepEqual([...pixels.subarray(0, 9)], [6, 7, 8, 3, 4, 5, 0, 1, 2]);
  flipHorizontal(pixels, 3);
  assert.deepEqual([...pixels.subarray(0, 9)], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
});

Deno.test("normaliseImageNet() uses the channel statistics", () => {
  const output = new Float32Array(5);
  normaliseImageNet(Float32Array.of(255, 0, 127.5), output, 2);
  assert.equal(output[0], 0);
  assert.ok(
    Math.abs(output[2] - (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]) < 1e-6,
  );
  assert.ok(
    Math.abs(output[3] - (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]) < 1e-6,
  );
  assert.ok(
    Math.abs(output[4] - (0.5 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]) < 1e-6,
  );
});
