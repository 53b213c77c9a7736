/**
 * Strategies by name, for configs and the command line.
 *
 * @module
 */

import { CamDrop, type CamDropOptions } from "./camdrop.ts";
import {
  GradientBlending,
  type GradientBlendingOptions,
} from "./gradient_blending.ts";
import { NaiveFusion } from "./naive.ts";
import { OgmGe, type OgmGeOptions } from "./ogm.ts";
import { Opm, type OpmOptions } from "./opm.ts";
import { Pmr, type PmrOptions } from "./pmr.ts";
import type { BalanceStrategy } from "./strategy.ts";

/** Method names the registry builds. */
export const METHODS = [
  "naive",
  "camdrop",
  "ogm",
  "ogm-ge",
  "opm",
  "gb",
  "pmr",
] as const;

/** A method name. */
export type MethodName = typeof METHODS[number];

/** Options for any method, by method. */
export interface MethodOptions {
  /** CAMDrop options. */
  camdrop?: CamDropOptions;
  /**
   * OGM and OGM-GE options. The method name sets `gradientNoise`: false
   * for "ogm", true for "ogm-ge".
   */
  ogm?: Omit<OgmGeOptions, "gradientNoise">;
  /** OPM options. */
  opm?: OpmOptions;
  /** Gradient-Blending ("gb") options. */
  gb?: GradientBlendingOptions;
  /** PMR options. */
  pmr?: PmrOptions;
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
    case "ogm":
      return new OgmGe({ ...options.ogm, gradientNoise: false });
    case "ogm-ge":
      return new OgmGe({ ...options.ogm, gradientNoise: true });
    case "opm":
      return new Opm(options.opm);
    case "gb":
      return new GradientBlending(options.gb);
    case "pmr":
      return new Pmr(options.pmr);
    default:
      throw new Error(
        `Unknown method "${name}": expected one of ${METHODS.join(", ")}.`,
      );
  }
}
