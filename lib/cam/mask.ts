/**
 * Top-n masks over class activation maps.
 *
 * @module
 */

/**
 * Number of positions to mask for ratio r over P positions:
 * floor(r * P + 0.5).
 * @throws {Error} If r is outside [0, 1] or P is not a positive integer.
 */
export function maskCount(ratio: number, positions: number): number {
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(`maskCount: ratio must lie in [0, 1], got ${ratio}.`);
  }
  if (!Number.isInteger(positions) || positions < 1) {
    throw new Error(
      `maskCount: positions must be a positive integer, got ${positions}.`,
    );
  }
  return Math.floor(ratio * positions + 0.5);
}

/**
 * Builds a binary mask that zeroes, in each group of `groupSize` values of
 * `cam`, the min(n, number of positive values) positions with the largest
 * values; ties are broken by position index (lower index first). Values
 * that are not positive are never masked. n = 0 gives all ones.
 *
 * @param cam CAM values, groups laid out one after another (for example
 * [B, P] row-major, or [B, T, h * w] for per-frame masking).
 * @param groupSize Positions per group (P).
 * @param n Positions to mask per group.
 * @returns Mask of the same length: 0 where masked, 1 elsewhere.
 * @throws {Error} If the length is not a multiple of `groupSize` or n is
 * negative or not an integer.
 */
export function topPositiveMask(
  cam: ArrayLike<number>,
  groupSize: number,
  n: number,
): Float32Array {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new Error(
      `topPositiveMask: groupSize must be a positive integer, got ${groupSize}.`,
    );
  }
  if (cam.length % groupSize !== 0) {
    throw new Error(
      `topPositiveMask: ${cam.length} values are not a whole number of ` +
        `groups of ${groupSize}.`,
    );
  }
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(
      `topPositiveMask: n must be a non-negative integer, got ${n}.`,
    );
  }
  const mask = new Float32Array(cam.length).fill(1);
  if (n === 0) return mask;
  const order: number[] = [];
  for (let start = 0; start < cam.length; start += groupSize) {
    order.length = 0;
    for (let p = 0; p < groupSize; p++) {
      if (cam[start + p] > 0) order.push(p);
    }
    order.sort((a, b) => cam[start + b] - cam[start + a] || a - b);
    const count = Math.min(n, order.length);
    for (let i = 0; i < count; i++) mask[start + order[i]] = 0;
  }
  return mask;
}
