/**
 * Runs `deno task ...` in the repository root as a user would, for the
 * end-to-end tests.
 *
 * @module
 */

/** The repository root. */
export const root: string = new URL("..", import.meta.url).pathname;

/** Output of one task run. */
export interface TaskResult {
  /** Exit status. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
}

/** Runs `deno task -q <args>` from the repository root and waits for it. */
export async function task(...args: string[]): Promise<TaskResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
