/**
 * Class activation maps and top-n masks built from them.
 *
 * @module
 */

export {
  type CamTarget,
  camTargets,
  type ChannelWeighting,
  classActivationMaps,
  gradCamWeights,
} from "./gradcam.ts";
export { maskCount, topPositiveMask } from "./mask.ts";
