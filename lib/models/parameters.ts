/**
 * Named model state: trainable variables and non-trainable buffers (batch
 * norm running statistics). Names are stable paths such as
 * `audio.layer2.0.conv1.kernel`, so checkpoints and optimisers can address
 * each tensor, and strategies can select encoder weights by prefix.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Trainable variables and buffers of a model, by name. */
export class ParameterStore {
  static #instances = 0;
  /**
   * Prefix of this store's tfjs variable names. tfjs requires variable
   * names to be unique per process, so two models can live side by side
   * only if their names differ.
   */
  readonly scope: string = `store${ParameterStore.#instances++}/`;
  /** Variables the optimiser updates. */
  readonly trainable: Map<string, tf.Variable> = new Map();
  /** Variables updated outside the gradient (running statistics). */
  readonly buffers: Map<string, tf.Variable> = new Map();

  /**
   * Adds a trainable variable initialised from `value` (taken over).
   * @throws {Error} If the name is already used.
   */
  addTrainable(name: string, value: tf.Tensor): tf.Variable {
    this.#checkFree(name);
    const variable = tf.variable(value, true, this.scope + name);
    value.dispose();
    this.trainable.set(name, variable);
    return variable;
  }

  /**
   * Adds a non-trainable buffer initialised from `value` (taken over).
   * @throws {Error} If the name is already used.
   */
  addBuffer(name: string, value: tf.Tensor): tf.Variable {
    this.#checkFree(name);
    const variable = tf.variable(value, false, this.scope + name);
    value.dispose();
    this.buffers.set(name, variable);
    return variable;
  }

  /** Returns the trainable variables whose names start with `prefix`. */
  trainableWithPrefix(prefix: string): tf.Variable[] {
    return [...this.trainable.entries()]
      .filter(([name]) => name.startsWith(prefix))
      .map(([, variable]) => variable);
  }

  /**
   * Re-keys a map keyed by tfjs variable names (as `tf.variableGrads`
   * returns) by this store's names.
   */
  byStoreName<T>(byVariableName: Record<string, T>): Record<string, T> {
    const out: Record<string, T> = {};
    for (const [key, value] of Object.entries(byVariableName)) {
      out[key.startsWith(this.scope) ? key.slice(this.scope.length) : key] =
        value;
    }
    return out;
  }

  /** Counts trainable scalars. */
  countTrainable(): number {
    let total = 0;
    for (const variable of this.trainable.values()) total += variable.size;
    return total;
  }

  /** Copies every variable and buffer out as plain arrays, for checkpoints. */
  async snapshot(): Promise<Record<string, StoredTensor>> {
    const out: Record<string, StoredTensor> = {};
    for (const map of [this.trainable, this.buffers]) {
      for (const [name, variable] of map) {
        out[name] = {
          shape: variable.shape,
          values: await variable.data() as Float32Array,
        };
      }
    }
    return out;
  }

  /**
   * Loads values saved by {@linkcode ParameterStore.snapshot}.
   * @throws {Error} If a name is missing or a shape differs.
   */
  restore(saved: Record<string, StoredTensor>): void {
    for (const map of [this.trainable, this.buffers]) {
      for (const [name, variable] of map) {
        const entry = saved[name];
        if (entry === undefined) {
          throw new Error(
            `Checkpoint has no tensor "${name}": it was saved from a ` +
              `different model configuration.`,
          );
        }
        if (entry.shape.join(",") !== variable.shape.join(",")) {
          throw new Error(
            `Checkpoint tensor "${name}" has shape [${entry.shape}], but ` +
              `the model expects [${variable.shape}]: check the model options.`,
          );
        }
        tf.tidy(() => variable.assign(tf.tensor(entry.values, entry.shape)));
      }
    }
  }

  /** Disposes every variable. */
  dispose(): void {
    for (const variable of this.trainable.values()) variable.dispose();
    for (const variable of this.buffers.values()) variable.dispose();
    this.trainable.clear();
    this.buffers.clear();
  }

  #checkFree(name: string): void {
    if (this.trainable.has(name) || this.buffers.has(name)) {
      throw new Error(`Parameter name "${name}" is used twice.`);
    }
  }
}

/** A tensor as plain data. */
export interface StoredTensor {
  /** Tensor shape. */
  shape: number[];
  /** Values in row-major order. */
  values: Float32Array;
}
