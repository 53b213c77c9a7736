import assert from "node:assert/strict";
import { Random } from "../_random.ts";
import { pickFrames } from "./_frames.ts";

Deno.test("pickFrames() takes segment centres in evaluation", () => {
  assert.deepEqual(pickFrames(10, 3), [1, 5, 8]);
  assert.deepEqual(pickFrames(9, 3), [1, 4, 7]);
  assert.deepEqual(pickFrames(7, 1), [3]);
});

Deno.test("pickFrames() stays inside segments in training", () => {
  const random = new Random(5);
  const seen = [new Set<number>(), new Set<number>(), new Set<number>()];
  for (let i = 0; i < 300; i++) {
    const picks = pickFrames(12, 3, random);
    picks.forEach((pick, t) => {
      assert.ok(pick >= 4 * t, `segment ${t} starts at ${4 * t}: ${pick}`);
      assert.ok(
        pick < 4 * (t + 1),
        `segment ${t} ends at ${4 * t + 3}: ${pick}`,
      );
      seen[t].add(pick);
    });
  }
  for (const frames of seen) assert.equal(frames.size, 4, "every frame drawn");
});

Deno.test("pickFrames() is fixed by the seed", () => {
  const a = pickFrames(30, 3, new Random(9));
  const b = pickFrames(30, 3, new Random(9));
  assert.deepEqual(a, b);
});

Deno.test("pickFrames() repeats frames of short clips", () => {
  assert.deepEqual(pickFrames(1, 3), [0, 0, 0]);
  assert.deepEqual(pickFrames(2, 3), [0, 1, 1]);
  const picks = pickFrames(2, 3, new Random(2));
  for (const pick of picks) assert.ok(pick === 0 || pick === 1);
});

Deno.test("pickFrames() rejects empty clips", () => {
  assert.throws(() => pickFrames(0, 3), /count must be >= 1, got 0/);
  assert.throws(() => pickFrames(3, 0), /segments must be >= 1, got 0/);
});
