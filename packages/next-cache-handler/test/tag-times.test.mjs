// The pure tag state: monotonic times, the staleness rule with its clock-skew margin.
import { test } from "node:test";
import assert from "node:assert/strict";

import { TagTimes } from "../dist/tag-times.js";
import { logPk, logSk, tagsPk, validStorefront } from "../dist/table.js";

test("tag times only move forward, whatever order they arrive in", () => {
  const times = new TagTimes(0);
  for (const at of [5, 9, 3, 9, 7]) times.raise("product:p1", at);
  times.raise("product:p1", Number.NaN);
  assert.equal(times.latest(["product:p1"]), 9);
  assert.equal(times.latest(["product:p2"]), 0);
  assert.equal(times.latest(["product:p1", "store:s1:products"]), 9);
});

test("an entry is stale when stored at or before a revalidation plus the margin", () => {
  const times = new TagTimes(100);
  times.raise("product:p1", 1000);
  assert.equal(times.isStale(["product:p1"], 999), true);
  assert.equal(times.isStale(["product:p1"], 1100), true, "inside the margin");
  assert.equal(times.isStale(["product:p1"], 1101), false);
  assert.equal(times.isStale(["product:p2"], 0), false, "never revalidated");
  assert.equal(times.expiration(["product:p1", "product:p2"]), 1100);
  assert.equal(times.expiration(["product:p2"]), 0);
});

test("keys match the writer's (core/src/tag_table.rs keys_are_the_documented_ones)", () => {
  assert.equal(tagsPk("web"), "tags#web");
  assert.equal(logPk("web", 1_795_000_000_123), "log#web#29916666");
  assert.equal(logSk(1_795_000_000_123, "store:s1:products"), "1795000000123#store:s1:products");
  assert.equal(validStorefront("web-eu_1"), true);
  for (const bad of ["", "a#b", "a b", "x".repeat(65)]) assert.equal(validStorefront(bad), false, bad);
});
