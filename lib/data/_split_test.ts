import assert from "node:assert/strict";
import { carveValidation } from "./_split.ts";

const items = Array.from({ length: 40 }, (_, i) => ({ id: i, label: i % 4 }));

Deno.test("carveValidation() moves the fraction", () => {
  const { train, val } = carveValidation(items, 0.1, 0);
  assert.equal(val.length, 4);
  assert.equal(train.length, 36);
  const ids = new Set([...train, ...val].map((item) => item.id));
  assert.equal(ids.size, 40, "every item lands in one split");
});

Deno.test("carveValidation() spreads over classes", () => {
  const { val } = carveValidation(items, 0.2, 1);
  const perClass = [0, 0, 0, 0];
  for (const item of val) perClass[item.label]++;
  assert.deepEqual(perClass, [2, 2, 2, 2]);
});

Deno.test("carveValidation() is fixed by the seed", () => {
  const a = carveValidation(items, 0.1, 7).val.map((item) => item.id);
  const b = carveValidation(items, 0.1, 7).val.map((item) => item.id);
  const c = carveValidation(items, 0.1, 8).val.map((item) => item.id);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("carveValidation() keeps one training item", () => {
  assert.equal(carveValidation(items.slice(0, 1), 0.1, 0).val.length, 0);
  const two = carveValidation(items.slice(0, 2), 0.5, 0);
  assert.equal(two.val.length, 1);
  assert.equal(two.train.length, 1);
});
