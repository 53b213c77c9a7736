import assert from "node:assert/strict";
import { maskCount, topPositiveMask } from "./mask.ts";

Deno.test("maskCount() rounds r * P half up", () => {
  assert.equal(maskCount(0.15, 16), 2); // 2.4 -> 2
  assert.equal(maskCount(0.3, 10), 3);
  assert.equal(maskCount(0.25, 2), 1); // 0.5 rounds up
  assert.equal(maskCount(0.2, 36), 7); // 7.2 -> 7
  assert.equal(maskCount(0.1, 4), 0); // 0.4 -> 0
  assert.equal(maskCount(0, 49), 0);
  assert.equal(maskCount(1, 49), 49);
});

Deno.test("maskCount() rejects invalid ratio and size", () => {
  assert.throws(() => maskCount(-0.1, 16), /ratio must lie in \[0, 1\]/);
  assert.throws(() => maskCount(1.5, 16), /ratio must lie in \[0, 1\]/);
  assert.throws(() => maskCount(NaN, 16), /ratio/);
  assert.throws(() => maskCount(0.3, 0), /positive integer/);
});

Deno.test("topPositiveMask() zeroes the n largest", () => {
  const mask = topPositiveMask([3, 1, 2, 0.5], 4, 2);
  assert.deepEqual([...mask], [0, 1, 0, 1]);
});

Deno.test("topPositiveMask() breaks ties by index", () => {
  assert.deepEqual([...topPositiveMask([1, 1, 1, 1], 4, 2)], [0, 0, 1, 1]);
  assert.deepEqual([...topPositiveMask([2, 5, 5, 5], 4, 2)], [1, 0, 0, 1]);
  assert.deepEqual([...topPositiveMask([5, 2, 5, 5], 4, 3)], [0, 1, 0, 0]);
});

Deno.test("topPositiveMask() never masks non-positive values", () => {
  // n = 3 but only two positive values.
  assert.deepEqual([...topPositiveMask([0.5, 0, -1, 0.2], 4, 3)], [
    0,
    1,
    1,
    0,
  ]);
  assert.deepEqual([...topPositiveMask([0, 0, 0, 0], 4, 2)], [1, 1, 1, 1]);
});

Deno.test("topPositiveMask() with n = 0 masks nothing", () => {
  assert.deepEqual([...topPositiveMask([9, 8, 7, 6], 4, 0)], [1, 1, 1, 1]);
});

Deno.test("topPositiveMask() treats each group apart", () => {
  // Two samples of P = 3; n = 1 each.
  const mask = topPositiveMask([1, 3, 2, 0, 0, 4], 3, 1);
  assert.deepEqual([...mask], [1, 0, 1, 1, 1, 0]);
});

Deno.test("topPositiveMask() matches a sort on random data", () => {
  let seed = 7;
  const next = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (const [groups, size] of [[4, 16], [3, 36], [2, 49], [5, 7]]) {
    const values = Array.from(
      { length: groups * size },
      () => Math.round((next() - 0.3) * 8) / 2, // many ties and zeros
    );
    for (const ratio of [0.1, 0.2, 0.3, 0.5, 0.9]) {
      const n = maskCount(ratio, size);
      const mask = topPositiveMask(values, size, n);
      for (let g = 0; g < groups; g++) {
        const group = values.slice(g * size, (g + 1) * size);
        const positive = group.map((v, p) => [v, p]).filter(([v]) => v > 0)
          .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        const expected = new Set(positive.slice(0, n).map(([, p]) => p));
        for (let p = 0; p < size; p++) {
          assert.equal(
            mask[g * size + p],
            expected.has(p) ? 0 : 1,
            `group ${g}, position ${p}, ratio ${ratio}`,
          );
        }
      }
    }
  }
});

Deno.test("topPositiveMask() rejects bad shapes", () => {
  assert.throws(() => topPositiveMask([1, 2, 3], 2, 1), /whole number/);
  assert.throws(() => topPositiveMask([1, 2], 2, -1), /non-negative/);
  assert.throws(() => topPositiveMask([1, 2], 0, 1), /groupSize/);
});
