/**
 * `deno task test`: runs every test with `deno test`, streams its output
 * and ends with the plain line `N passed, N failed` (Deno's own summary
 * has another shape). Exits non-zero when a test fails.
 *
 * Extra arguments are passed to `deno test` (for example a path or
 * `--filter NAME`).
 *
 * @module
 */

const deno = Deno.execPath();
const root = new URL("..", import.meta.url).pathname;
const temporary = Deno.env.get("TMPDIR") ?? "/tmp";
// Tests write only to temporary folders and the project (run folders of
// the end-to-end tests), start Deno and Node for end-to-end runs, and call
// oneDNN and OpenBLAS through FFI for the accelerated kernels.
const args = [
  "test",
  "--allow-read",
  `--allow-write=${temporary},${root}`,
  "--allow-env",
  "--allow-run",
  "--allow-ffi",
  "--unstable-webgpu",
  "--no-check",
  ...Deno.args,
];
const child = new Deno.Command(deno, {
  args,
  stdout: "piped",
  stderr: "inherit",
}).spawn();

// Stream stdout and keep the text to find Deno's summary.
const decoder = new TextDecoder();
let text = "";
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  text += decoder.decode(chunk, { stream: true });
}
const status = await child.status;

// Deno prints "ok | 12 passed (3 steps) | 0 failed | 1 ignored (2s)".
// deno-lint-ignore no-control-regex
const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
const summary = plain.match(/(\d+) passed[^|]*\|\s*(\d+) failed/g)?.at(-1);
if (summary === undefined) {
  console.log(`0 passed, 1 failed`);
  console.error("error: deno test printed no summary; see the output above.");
  Deno.exit(status.code === 0 ? 1 : status.code);
}
const [, passed, failed] = summary.match(/(\d+) passed[^|]*\|\s*(\d+) failed/)!;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.code);
