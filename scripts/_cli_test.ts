import assert from "node:assert/strict";
import { joinNegativeValues, usageError } from "./_cli.ts";

const OPTIONS = {
  jobs: { type: "string" },
  all: { type: "boolean" },
} as const;

Deno.test("joinNegativeValues joins negative values", () => {
  assert.deepEqual(joinNegativeValues(["--jobs", "-1"], OPTIONS), [
    "--jobs=-1",
  ]);
  assert.deepEqual(joinNegativeValues(["--jobs", "-.5"], OPTIONS), [
    "--jobs=-.5",
  ]);
});

Deno.test("joinNegativeValues leaves other arguments", () => {
  // A boolean takes no value, and an option name is not a number.
  const args = ["--all", "-1", "--jobs", "--all", "--jobs", "2"];
  assert.deepEqual(joinNegativeValues(args, OPTIONS), args);
});

Deno.test("usageError ends with one period", () => {
  assert.equal(
    usageError(new Error("Option '--x' is ambiguous.")),
    "Option '--x' is ambiguous. Run with --help for the options.",
  );
});
