/**
 * Training: the trainer, optimisers and run files.
 *
 * @module
 */

export {
  crossEntropy,
  NonFiniteError,
  type StepProgress,
  type TrainCallbacks,
  Trainer,
  type TrainerOptions,
  type TrainerState,
} from "./trainer.ts";
export {
  createOptimizer,
  type Optimizer,
  type OptimizerName,
  type OptimizerOptions,
  OPTIMIZERS,
  stepDecay,
} from "./optimizers.ts";
export {
  decodeCheckpoint,
  encodeCheckpoint,
  writeFileAtomic,
} from "./files.ts";
