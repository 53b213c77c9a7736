/**
 * Validation of {@linkcode BatchOptions}, shared by every dataset.
 *
 * @module
 */

import type { BatchOptions } from "./types.ts";

/**
 * Checks batch size, seed and epoch.
 * @param owner Name used in messages, such as "EmbeddedDigits.batches".
 * @throws {RangeError} Naming the invalid value.
 */
export function checkBatchOptions(owner: string, options: BatchOptions): void {
  const { batchSize, seed, epoch } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `${owner}: batchSize must be a positive integer, got ${batchSize}`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new RangeError(`${owner}: seed must be an integer, got ${seed}`);
  }
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new RangeError(
      `${owner}: epoch must be a non-negative integer, got ${epoch}`,
    );
  }
}
