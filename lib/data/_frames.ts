/**
 * Choice of frames within a clip: the clip's N frames (sorted by name) are
 * cut into T segments of equal length N / T. Training takes one frame at
 * a random position inside each segment; evaluation takes each segment's
 * centre frame. With fewer frames than segments some frames repeat.
 *
 * @module
 */

import type { Random } from "../_random.ts";

/**
 * Returns T frame indices in [0, count), one per uniform segment: random
 * within the segment when `random` is given, else the segment centre.
 *
 * @param count Frames N of the clip, at least 1.
 * @param segments Frames T to pick, at least 1.
 * @param random Stream for training picks; omit it for evaluation.
 */
export function pickFrames(
  count: number,
  segments: number,
  random?: Random,
): number[] {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`pickFrames: count must be >= 1, got ${count}`);
  }
  if (!Number.isInteger(segments) || segments < 1) {
    throw new RangeError(`pickFrames: segments must be >= 1, got ${segments}`);
  }
  const length = count / segments;
  const picks: number[] = [];
  for (let t = 0; t < segments; t++) {
    const position = random === undefined ? 0.5 : random.next();
    const index = Math.floor((t + position) * length);
    picks.push(Math.min(count - 1, index));
  }
  return picks;
}
