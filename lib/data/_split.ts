/**
 * A validation split carved out of a training list, for datasets that
 * ship only train and test lists.
 *
 * @module
 */

import { deriveSeed, Random } from "../_random.ts";

/**
 * Moves `max(1, round(fraction * n))` of `n` training items to validation
 * (none when `n < 2`). Items are shuffled within each class by `seed`,
 * then classes take turns in a shuffled order, so every class gives about
 * the same fraction. Both lists keep the input order.
 */
export function carveValidation<T extends { label: number }>(
  items: readonly T[],
  fraction: number,
  seed: number,
): { train: T[]; val: T[] } {
  if (items.length < 2 || fraction <= 0) {
    return { train: [...items], val: [] };
  }
  const count = Math.min(
    items.length - 1,
    Math.max(1, Math.round(fraction * items.length)),
  );
  const random = new Random(deriveSeed(seed, "carve-validation"));
  const byClass = new Map<number, number[]>();
  items.forEach((item, i) => {
    const list = byClass.get(item.label) ?? [];
    list.push(i);
    byClass.set(item.label, list);
  });
  const queues = [...byClass.keys()].sort((a, b) => a - b).map((label) =>
    random.shuffle(byClass.get(label)!)
  );
  random.shuffle(queues);

  const chosen = new Set<number>();
  for (let round = 0; chosen.size < count; round++) {
    for (const queue of queues) {
      if (round < queue.length && chosen.size < count) chosen.add(queue[round]);
    }
  }
  return {
    train: items.filter((_, i) => !chosen.has(i)),
    val: items.filter((_, i) => chosen.has(i)),
  };
}
