/**
 * Validation of {@linkcode BatchOptions}, shared by every dataset.
 *
 * @module
 */

import { deriveSeed, Random } from "../_random.ts";
import type { BatchOptions, Split } from "./types.ts";

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

/** Sample order and mode of one split's batches for one epoch. */
export interface BatchPlan {
  /** Sample positions in the order they are batched. */
  order: number[];
  /** Training mode (shuffled, augmented). */
  training: boolean;
  /** Whether a last batch smaller than the batch size is dropped. */
  dropLast: boolean;
}

/**
 * Checks the split and options, then returns the sample order: shuffled
 * from the seed, split and epoch in training, in index order otherwise.
 * @throws {RangeError} Naming the invalid split or option.
 */
export function planBatches(
  owner: string,
  split: Split,
  size: number,
  options: BatchOptions,
): BatchPlan {
  if (!["train", "val", "test"].includes(split)) {
    throw new RangeError(
      `${owner}: split must be train, val or test, got ${split}`,
    );
  }
  checkBatchOptions(owner, options);
  const training = options.training ?? false;
  const order = [...Array(size).keys()];
  if (training) {
    new Random(deriveSeed(options.seed, "order", split, options.epoch))
      .shuffle(order);
  }
  return { order, training, dropLast: training && (options.dropLast ?? false) };
}
