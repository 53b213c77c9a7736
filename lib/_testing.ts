/**
 * Helpers shared by the unit tests.
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * Relative error as used across the project's numeric tests:
 * max |ours - reference| / max |reference|.
 */
export function relativeError(
  ours: ArrayLike<number>,
  reference: ArrayLike<number>,
): number {
  assert.equal(ours.length, reference.length, "lengths differ");
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < reference.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ours[i] - reference[i]));
    maxRef = Math.max(maxRef, Math.abs(reference[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Asserts that the relative error is at most `tolerance`. */
export function assertRelativeError(
  label: string,
  ours: ArrayLike<number>,
  reference: ArrayLike<number>,
  tolerance: number,
): void {
  const error = relativeError(ours, reference);
  assert.ok(
    error <= tolerance,
    `${label}: relative error ${error.toExponential(2)} > ${tolerance}`,
  );
}

/** Asserts two numbers agree to `tolerance` in absolute terms. */
export function assertNear(
  actual: number,
  expected: number,
  tolerance = 1e-6,
  label = "value",
): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${label}: got ${actual}, expected ${expected} (tolerance ${tolerance})`,
  );
}
