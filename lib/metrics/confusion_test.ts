import assert from "node:assert/strict";
import { assertNear } from "../_testing.ts";
import { confusionMatrix, macroF1, perClassAccuracy } from "./confusion.ts";

// Nine samples of three classes, worked out by hand:
//   class 0: labels at 0..2, predicted 0, 1, 0
//   class 1: labels at 3..4, predicted 1, 2
//   class 2: labels at 5..8, predicted 2, 2, 0, 2
const LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2];
const PREDICTIONS = [0, 1, 0, 1, 2, 2, 2, 0, 2];

Deno.test("confusionMatrix() counts label by prediction", () => {
  const matrix = confusionMatrix(LABELS, PREDICTIONS, 3);
  assert.deepEqual(matrix, [
    [2, 1, 0],
    [0, 1, 1],
    [1, 0, 3],
  ]);
});

Deno.test("confusionMatrix() keeps empty classes as zero rows", () => {
  const matrix = confusionMatrix([1, 1], [1, 0], 3);
  assert.deepEqual(matrix, [
    [0, 0, 0],
    [1, 1, 0],
    [0, 0, 0],
  ]);
});

Deno.test("confusionMatrix() rejects invalid input", () => {
  assert.throws(
    () => confusionMatrix([0, 1], [0], 2),
    /2 labels but 1 predictions/,
  );
  assert.throws(
    () => confusionMatrix([0, 2], [0, 1], 2),
    /label 2 at index 1 is not a class in \[0, 2\)/,
  );
  assert.throws(
    () => confusionMatrix([0, 1], [0, -1], 2),
    /prediction -1 at index 1/,
  );
  assert.throws(() => confusionMatrix([], [], 0), /numClasses must be/);
});

Deno.test("perClassAccuracy() is recall per class", () => {
  const accuracy = perClassAccuracy(confusionMatrix(LABELS, PREDICTIONS, 3));
  assertNear(accuracy[0], 2 / 3, 1e-12, "class 0");
  assertNear(accuracy[1], 1 / 2, 1e-12, "class 1");
  assertNear(accuracy[2], 3 / 4, 1e-12, "class 2");
});

Deno.test("perClassAccuracy() is NaN without samples", () => {
  const accuracy = perClassAccuracy([[1, 1], [0, 0]]);
  assert.equal(accuracy[0], 0.5);
  assert.ok(Number.isNaN(accuracy[1]));
});

Deno.test("macroF1() matches the hand value", () => {
  // F1 = 2TP / (2TP + FP + FN):
  //   class 0: TP 2, FP 1, FN 1 -> 4/6
  //   class 1: TP 1, FP 1, FN 1 -> 2/4
  //   class 2: TP 3, FP 1, FN 1 -> 6/8
  // mean = (2/3 + 1/2 + 3/4) / 3 = 23/36.
  const f1 = macroF1(confusionMatrix(LABELS, PREDICTIONS, 3));
  assertNear(f1, 23 / 36, 1e-12, "macro-F1");
});

Deno.test("macroF1() skips classes never seen", () => {
  // Class 3 is neither a label nor a prediction, so the mean stays 23/36.
  const f1 = macroF1(confusionMatrix(LABELS, PREDICTIONS, 4));
  assertNear(f1, 23 / 36, 1e-12, "macro-F1 with an unused class");
});

Deno.test("macroF1() counts wrong-only classes as zero", () => {
  // Class 1 is predicted once but never a label: its F1 is 0.
  // Class 0: TP 1, FN 1, FP 0 -> 2/3. Mean (2/3 + 0) / 2 = 1/3.
  const f1 = macroF1(confusionMatrix([0, 0], [0, 1], 2));
  assertNear(f1, 1 / 3, 1e-12, "macro-F1");
});

Deno.test("macroF1() is 1 for perfect predictions", () => {
  assert.equal(macroF1(confusionMatrix([0, 1, 2], [0, 1, 2], 3)), 1);
});

Deno.test("macroF1() is NaN for no samples", () => {
  assert.ok(Number.isNaN(macroF1(confusionMatrix([], [], 2))));
});
