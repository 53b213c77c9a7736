/**
 * Strategies by name, for configs and the command line.
 *
 * @module
 */

import { CamDrop, type CamDropOptions } from "./camdrop.ts";
import { NaiveFusion } from "./naive.ts";
import type { BalanceStrategy } from "./strategy.ts";

/** Method names the registry builds. */
export const METHODS = ["naive", "camdrop"] as const;

/** A method name. */
export type MethodName = typeof METHODS[number];

/** Options for any method, by method. */
export interface MethodOptions {
  /** CAMDrop options. */
  camdrop?: CamDropOptions;
}

/**
 * Builds the strategy `name`.
 * @throws {Error} If the name is unknown.
 */
export function createStrategy(
  name: string,
  options: MethodOptions = {},
): BalanceStrategy {
  switch (name) {
    case "naive":
      return new NaiveFusion();
    case "camdrop":
      return new CamDrop(options.camdrop);
    default:
      throw new Error(
        `Unknown method "${name}": expected one of ${METHODS.join(", ")}.`,
      );
  }
}
