/**
 * Shared command-line helpers: a progress bar on stderr and error exits.
 *
 * @module
 */

import type { StepProgress } from "../lib/mod.ts";

const encoder = new TextEncoder();

/** Writes text to stderr without a newline. */
export function writeErr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

/**
 * A one-line progress bar for training steps. On a terminal it redraws in
 * place; elsewhere it prints one line per 25 % of an epoch.
 */
export class ProgressBar {
  readonly #tty = Deno.stderr.isTerminal();
  #lastQuarter = -1;
  #label = "";

  /** Sets the prefix, such as the run name. */
  setLabel(label: string): void {
    this.#label = label;
  }

  /** Draws one step's progress. */
  step(p: StepProgress, epochs: number): void {
    const done = (p.step + 1) / p.steps;
    const text = `${this.#label} epoch ${p.epoch + 1}/${epochs} ` +
      `${bar(done)} ${p.step + 1}/${p.steps} loss ${p.loss.toFixed(3)} ` +
      `acc ${(100 * p.accuracy).toFixed(1)}%`;
    if (this.#tty) {
      writeErr(`\r\x1b[2K${text}`);
      return;
    }
    const quarter = Math.floor(done * 4);
    if (quarter !== this.#lastQuarter) {
      this.#lastQuarter = quarter;
      if (quarter > 0) writeErr(text + "\n");
    }
  }

  /** Shows that evaluation runs. */
  evaluating(split: string): void {
    if (this.#tty) writeErr(`\r\x1b[2K${this.#label} evaluating ${split}...`);
  }

  /** Ends the current line. */
  clear(): void {
    if (this.#tty) writeErr("\r\x1b[2K");
    this.#lastQuarter = -1;
  }
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(fraction * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** Prints `error: <message>` and exits with status 1. */
export function fail(message: string): never {
  writeErr(`error: ${message}\n`);
  Deno.exit(1);
}

/**
 * Parses a numeric option value.
 * @throws Exits with an error naming the option when it is not a number.
 */
export function parseNumber(option: string, value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number)) {
    fail(`invalid ${option} "${value}": expected a number.`);
  }
  return number;
}
