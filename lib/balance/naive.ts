/**
 * Naive fusion: no balancing. The trainer's plain step.
 *
 * @module
 */

import type { BalanceStrategy } from "./strategy.ts";

/** The no-op strategy. */
export class NaiveFusion implements BalanceStrategy {
  /** Method name. */
  readonly name = "naive";

  /** Returns the (empty) options. */
  config(): Record<string, unknown> {
    return { method: this.name };
  }

  /** Zero masking, so metrics of every method share their columns. */
  stepStats(): Record<string, number> {
    return {
      mask_ratio_audio: 0,
      mask_ratio_visual: 0,
      masked_fraction_audio: 0,
      masked_fraction_visual: 0,
    };
  }
}
