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
 * A one-line progress bar for training steps of one or more runs. On a
 * terminal it redraws in place; elsewhere it prints nothing and callers
 * print one line per epoch.
 */
export class ProgressBar {
  readonly #tty = Deno.stderr.isTerminal();
  readonly #runs = new Map<string, string>();

  /** Draws one step's progress. */
  step(p: StepProgress, epochs: number): void {
    if (!this.#tty) return;
    const done = (p.step + 1) / p.steps;
    const name = p.run ?? "";
    this.#runs.set(
      name,
      `${shortName(name)} e${p.epoch + 1}/${epochs} ${bar(done)} ` +
        `loss ${p.loss.toFixed(2)} acc ${(100 * p.accuracy).toFixed(0)}%`,
    );
    writeErr(`\r\x1b[2K${[...this.#runs.values()].join(" | ")}`);
  }

  /** Forgets a finished run's part of the line. */
  finish(run: string): void {
    this.#runs.delete(run);
  }

  /** Clears the line so that a log line can be printed. */
  clear(): void {
    if (this.#tty) writeErr("\r\x1b[2K");
  }
}

function shortName(run: string): string {
  return run.replace(/^[a-z]+-/, "").slice(0, 24);
}

function bar(fraction: number, width = 12): string {
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

/**
 * Joins `--name -1` into `--name=-1` for the string options of `options`,
 * so that a negative number reaches the option's own range check instead
 * of parseArgs's "ambiguous" error.
 */
export function joinNegativeValues(
  args: readonly string[],
  options: Record<string, { type: "string" | "boolean" }>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    const next = args[i + 1];
    if (
      name !== undefined && options[name]?.type === "string" &&
      next !== undefined && /^-\d|^-\.\d/.test(next)
    ) {
      out.push(`${args[i]}=${next}`);
      i++;
      continue;
    }
    out.push(args[i]);
  }
  return out;
}

/** Formats a parseArgs error with a pointer to --help. */
export function usageError(error: unknown): string {
  const message = (error as Error).message.replace(/\.+$/, "");
  return `${message}. Run with --help for the options.`;
}
