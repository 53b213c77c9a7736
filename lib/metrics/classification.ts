/**
 * Accuracy and imbalance measures over a whole split.
 *
 * @module
 */

/**
 * Running counts for one split: correct predictions per head, summed loss
 * and true-class confidences for the dominance ratio.
 */
export class SplitAccumulator {
  #samples = 0;
  #lossSum = 0;
  #correct: Record<string, number> = {};
  #ratioSum = 0;

  /** Adds a batch. `predictions` maps a head name to predicted classes. */
  add(
    labels: ArrayLike<number>,
    predictions: Record<string, ArrayLike<number>>,
    lossSum: number,
    confidences?: { audio: ArrayLike<number>; visual: ArrayLike<number> },
  ): void {
    this.#samples += labels.length;
    this.#lossSum += lossSum;
    for (const [head, predicted] of Object.entries(predictions)) {
      let correct = 0;
      for (let i = 0; i < labels.length; i++) {
        if (predicted[i] === labels[i]) correct++;
      }
      this.#correct[head] = (this.#correct[head] ?? 0) + correct;
    }
    if (confidences) {
      for (let i = 0; i < labels.length; i++) {
        this.#ratioSum += Math.max(confidences.visual[i], 1e-8) /
          Math.max(confidences.audio[i], 1e-8);
      }
    }
  }

  /** Samples seen. */
  get samples(): number {
    return this.#samples;
  }

  /** Mean loss per sample. */
  meanLoss(): number {
    return this.#samples === 0 ? NaN : this.#lossSum / this.#samples;
  }

  /** Accuracy of `head` in [0, 1]. */
  accuracy(head: string): number {
    return this.#samples === 0
      ? NaN
      : (this.#correct[head] ?? 0) / this.#samples;
  }

  /** Mean over samples of y^v / y^a (visual dominance ratio). */
  visualDominance(): number {
    return this.#samples === 0 ? NaN : this.#ratioSum / this.#samples;
  }
}

/**
 * Imbalance ratio: audio accuracy / visual accuracy. Infinite when the
 * visual accuracy is 0.
 */
export function imbalanceRatio(
  audioAccuracy: number,
  visualAccuracy: number,
): number {
  return visualAccuracy === 0 ? Infinity : audioAccuracy / visualAccuracy;
}
