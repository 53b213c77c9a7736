/**
 * Fault tests of `deno task repro`: a run killed with SIGKILL mid-epoch and
 * resumed ends with the same metrics as an uninterrupted run, and Ctrl-C
 * (SIGINT) marks the run and says how to resume.
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const run = "embedded-concat-camdrop-r0.3-s0";

function repro(out: string, extra: string[] = []) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "scripts/repro.ts",
      "--preset",
      "smoke",
      "--method",
      "camdrop",
      "--epochs",
      "3",
      "--jobs",
      "1",
      "--out",
      out,
      "--figures",
      join(out, "figures"),
      ...extra,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Starts a run and sends `signal` `delay` ms after epoch `epoch` has been
 * logged.
 */
async function interruptAfterEpoch(
  out: string,
  epoch: number,
  signal: Deno.Signal,
  delay = 1500,
): Promise<{ code: number; stderr: string }> {
  const child = repro(out).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  let sent = false;
  const stdoutDone = child.stdout.pipeTo(new WritableStream());
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (!sent && stderr.includes(`epoch ${epoch}/3`)) {
      sent = true;
      // Let the next epoch (or the evaluation) get under way first.
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill(signal);
    }
  }
  await stdoutDone;
  const status = await child.status;
  return { code: status.code, stderr };
}

function withoutTiming(csv: string): string {
  const lines = csv.trim().split("\n").map((line) => line.split(","));
  const column = lines[0].indexOf("seconds");
  assert.ok(column >= 0, "metrics.csv has a seconds column");
  return lines.map((cells) => cells.filter((_, i) => i !== column).join(","))
    .join("\n");
}

Deno.test("killed run resumes to identical metrics", async () => {
  const killed = await Deno.makeTempDir({ prefix: "camdrop-killed-" });
  const reference = await Deno.makeTempDir({ prefix: "camdrop-reference-" });

  const first = await interruptAfterEpoch(killed, 1, "SIGKILL");
  assert.notEqual(first.code, 0, "the run was killed");
  const status = JSON.parse(
    await Deno.readTextFile(join(killed, run, "status.json")),
  );
  assert.notEqual(status.status, "complete");

  const resumed = await repro(killed).output();
  const resumedErr = new TextDecoder().decode(resumed.stderr);
  assert.equal(resumed.code, 0, resumedErr);
  assert.match(resumedErr, /resumed after epoch [12]/);

  const uninterrupted = await repro(reference).output();
  assert.equal(uninterrupted.code, 0);
  const a = await Deno.readTextFile(join(killed, run, "metrics.csv"));
  const b = await Deno.readTextFile(join(reference, run, "metrics.csv"));
  assert.equal(a.trim().split("\n").length, 4, "header and three epochs");
  assert.equal(withoutTiming(a), withoutTiming(b));

  await Deno.remove(killed, { recursive: true });
  await Deno.remove(reference, { recursive: true });
});

Deno.test("Ctrl-C marks the run and explains resume", async () => {
  const out = await Deno.makeTempDir({ prefix: "camdrop-sigint-" });
  const result = await interruptAfterEpoch(out, 1, "SIGINT");
  assert.equal(result.code, 130);
  assert.match(
    result.stderr,
    new RegExp(`resume with deno task repro --resume .*${run}`),
  );
  const status = JSON.parse(
    await Deno.readTextFile(join(out, run, "status.json")),
  );
  assert.equal(status.status, "interrupted");
  const rows = (await Deno.readTextFile(join(out, run, "metrics.csv")))
    .trim().split("\n");
  assert.ok(rows.length >= 2, "the finished epoch is on disk");
  await Deno.remove(out, { recursive: true });
});

Deno.test("Ctrl-C during evaluation marks the run", async () => {
  const out = await Deno.makeTempDir({ prefix: "camdrop-sigint-eval-" });
  // Right after the last epoch the linear probes and evaluation.json are
  // still to come.
  const result = await interruptAfterEpoch(out, 3, "SIGINT", 0);
  const status = JSON.parse(
    await Deno.readTextFile(join(out, run, "status.json")),
  );
  assert.notEqual(status.status, "running", result.stderr);
  if (status.status === "interrupted") {
    assert.equal(result.code, 130);
    assert.match(result.stderr, /resume with deno task repro --resume/);
  } else {
    assert.equal(status.status, "complete", "the run finished first");
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("unwritable output folder names the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camdrop-unwritable-" });
  // A regular file where the run folder's parent should be: no process,
  // root included, can create folders below it.
  const blocked = join(dir, "not-a-folder");
  await Deno.writeTextFile(blocked, "");
  const result = await repro(blocked).output();
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(result.code, 1);
  assert.match(stderr, /^error: .*not-a-folder/m);
  await Deno.remove(dir, { recursive: true });
});
