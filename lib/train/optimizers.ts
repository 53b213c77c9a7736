/**
 * SGD with momentum and Adam, both with coupled L2 weight decay as PyTorch
 * applies it (the decay term is added to the gradient). Written here so that
 * the learning rate can change per epoch and the state is plain named
 * tensors that checkpoints can save.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { StoredTensor } from "../models/parameters.ts";

/** Names of the optimisers. */
export const OPTIMIZERS = ["sgd", "adam"] as const;

/** An optimiser name. */
export type OptimizerName = typeof OPTIMIZERS[number];

/** Options of {@linkcode createOptimizer}. */
export interface OptimizerOptions {
  /** SGD momentum. @default 0.9 */
  momentum?: number;
  /** L2 weight decay. @default 1e-4 */
  weightDecay?: number;
  /** Adam beta1. @default 0.9 */
  beta1?: number;
  /** Adam beta2. @default 0.999 */
  beta2?: number;
  /** Adam epsilon. @default 1e-8 */
  epsilon?: number;
}

/** An optimiser over named variables. */
export interface Optimizer {
  /** Optimiser name. */
  readonly name: OptimizerName;
  /** Applies one update with learning rate `lr`. */
  step(
    variables: Map<string, tf.Variable>,
    gradients: Record<string, tf.Tensor>,
    lr: number,
  ): void;
  /** State tensors by name, for checkpoints. */
  snapshot(): Promise<Record<string, StoredTensor>>;
  /** Restores a snapshot. */
  restore(saved: Record<string, StoredTensor>): void;
  /** Frees the state. */
  dispose(): void;
}

class SlotStore {
  readonly slots: Map<string, tf.Variable> = new Map();
  steps = 0;

  slot(name: string, like: tf.Tensor): tf.Variable {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = tf.variable(tf.zerosLike(like), false);
      this.slots.set(name, slot);
    }
    return slot;
  }

  async snapshot(): Promise<Record<string, StoredTensor>> {
    const out: Record<string, StoredTensor> = {
      __steps: { shape: [], values: new Float32Array([this.steps]) },
    };
    for (const [name, slot] of this.slots) {
      out[name] = {
        shape: slot.shape,
        values: await slot.data() as Float32Array,
      };
    }
    return out;
  }

  restore(saved: Record<string, StoredTensor>): void {
    this.dispose();
    for (const [name, entry] of Object.entries(saved)) {
      if (name === "__steps") {
        this.steps = entry.values[0];
        continue;
      }
      this.slots.set(
        name,
        tf.variable(tf.tensor(entry.values, entry.shape), false),
      );
    }
  }

  dispose(): void {
    for (const slot of this.slots.values()) slot.dispose();
    this.slots.clear();
  }
}

/**
 * Creates an optimiser.
 * @throws {Error} If the name is unknown or an option is out of range.
 */
export function createOptimizer(
  name: string,
  options: OptimizerOptions = {},
): Optimizer {
  const weightDecay = options.weightDecay ?? 1e-4;
  if (!(weightDecay >= 0)) {
    throw new Error(`Weight decay must be >= 0, got ${weightDecay}.`);
  }
  const state = new SlotStore();
  const withDecay = (g: tf.Tensor, p: tf.Tensor) =>
    weightDecay > 0 ? tf.add(g, tf.mul(p, weightDecay)) : g;
  if (name === "sgd") {
    const momentum = options.momentum ?? 0.9;
    if (!(momentum >= 0 && momentum < 1)) {
      throw new Error(`SGD momentum must lie in [0, 1), got ${momentum}.`);
    }
    return {
      name: "sgd",
      step(variables, gradients, lr) {
        tf.tidy(() => {
          for (const [key, variable] of variables) {
            const gradient = gradients[key];
            if (gradient === undefined) continue;
            const g = withDecay(gradient, variable);
            // buf = momentum * buf + g; p -= lr * buf (PyTorch's SGD).
            const buffer = state.slot(`${key}/momentum`, variable);
            const next = momentum > 0 ? tf.add(tf.mul(buffer, momentum), g) : g;
            buffer.assign(next);
            variable.assign(tf.sub(variable, tf.mul(next, lr)));
          }
        });
        state.steps++;
      },
      snapshot: () => state.snapshot(),
      restore: (saved) => state.restore(saved),
      dispose: () => state.dispose(),
    };
  }
  if (name === "adam") {
    const beta1 = options.beta1 ?? 0.9;
    const beta2 = options.beta2 ?? 0.999;
    const epsilon = options.epsilon ?? 1e-8;
    return {
      name: "adam",
      step(variables, gradients, lr) {
        state.steps++;
        const t = state.steps;
        const correction1 = 1 - beta1 ** t;
        const correction2 = 1 - beta2 ** t;
        tf.tidy(() => {
          for (const [key, variable] of variables) {
            const gradient = gradients[key];
            if (gradient === undefined) continue;
            const g = withDecay(gradient, variable);
            const m = state.slot(`${key}/m`, variable);
            const v = state.slot(`${key}/v`, variable);
            m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
            v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
            const denominator = tf.add(
              tf.sqrt(tf.div(v, correction2)),
              epsilon,
            );
            const update = tf.div(tf.div(m, correction1), denominator);
            variable.assign(tf.sub(variable, tf.mul(update, lr)));
          }
        });
      },
      snapshot: () => state.snapshot(),
      restore: (saved) => state.restore(saved),
      dispose: () => state.dispose(),
    };
  }
  throw new Error(
    `Unknown optimizer "${name}": expected one of ${OPTIMIZERS.join(", ")}.`,
  );
}

/**
 * Step decay: lr * factor^floor(epoch / every). `every` <= 0 means no
 * decay.
 */
export function stepDecay(
  lr: number,
  epoch: number,
  every: number,
  factor: number,
): number {
  if (every <= 0) return lr;
  return lr * factor ** Math.floor(epoch / every);
}
