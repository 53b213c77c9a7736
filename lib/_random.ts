/**
 * Seeded pseudo-random numbers shared by data loading, masking and the
 * baselines, so that one seed fixes every random choice of a run.
 *
 * @module
 */

/** A stream of uniform numbers in [0, 1) with helpers built on it. */
export class Random {
  #state: number;

  /** Creates a stream; equal seeds give equal streams. */
  constructor(seed: number) {
    this.#state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  }

  /** Returns the next uniform number in [0, 1) (mulberry32). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Returns an integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Returns a standard normal sample (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** Returns the current state, for checkpoints. */
  getState(): number {
    return this.#state;
  }

  /** Restores a state returned by {@linkcode Random.getState}. */
  setState(state: number): void {
    this.#state = state >>> 0;
  }
}

/**
 * Derives a 32-bit seed from a base seed and labels (FNV-1a), so that each
 * purpose (data order, masks, noise per epoch) gets its own stream.
 */
export function deriveSeed(
  seed: number,
  ...labels: (string | number)[]
): number {
  let h = 0x811c9dc5 ^ (Math.floor(seed) >>> 0);
  for (const label of labels) {
    const text = String(label);
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0x2f;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
