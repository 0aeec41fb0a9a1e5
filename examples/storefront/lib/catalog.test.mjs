// The cache tags the storefront tags its fetches with, against contracts/cache-tags.json, the
// file catalog-sync's own tags (core/src/tags.rs, `tags_are_the_contracts`) are tested against:
// a tag spelled differently on one side would revalidate nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { tags } from "./catalog.ts";

const contract = JSON.parse(
  readFileSync(new URL("../../../contracts/cache-tags.json", import.meta.url), "utf8"),
);

test("the storefront's cache tags are catalog-sync's", () => {
  for (const v of contract.products) {
    assert.equal(tags.product(v.productId), v.product);
    assert.equal(tags.inventory(v.productId), v.inventory);
    assert.equal(tags.store(v.storeId), v.store);
  }
});
