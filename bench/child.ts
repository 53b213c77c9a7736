/**
 * Runs one measurement in a child process: its stderr is passed through as
 * progress, and its stdout ends with one JSON line, the result.
 *
 * @module
 */

/** Exit code and output of a child process. */
export interface ChildOutput {
  /** Exit code; -1 when the program could not be started. */
  code: number;
  /** The parsed last line of stdout, when it is JSON. */
  json?: unknown;
  /** Last lines of stderr, for error messages. */
  stderrTail: string[];
}

const TAIL_LINES = 12;

/**
 * Runs `command` with `args`, copying its stderr to ours line by line.
 * A program that fails or does not start gives a non-zero code and its
 * stderr instead of an exception.
 */
export async function runChild(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } =
    {},
): Promise<ChildOutput> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      env: options.env,
      clearEnv: options.clearEnv,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    return { code: -1, stderrTail: [`${command} did not start: ${error}`] };
  }

  const tail: string[] = [];
  const forward = async () => {
    const encoder = new TextEncoder();
    const lines = child.stderr
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines());
    for await (const line of lines) {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  const [status, stdout] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    forward(),
  ]);

  const lines = stdout.trim().split("\n");
  let json: unknown;
  try {
    json = JSON.parse(lines[lines.length - 1]);
  } catch {
    json = undefined;
  }
  return { code: status.code, json, stderrTail: tail };
}

function splitLines(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (buffer !== "") controller.enqueue(buffer);
    },
  });
}
