// The tag table's keys against contracts/tag-table.json, the file catalog-sync's Rust writer
// (core/src/tag_table.rs, `keys_are_the_contracts`) is tested against too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  LOG_ITEM_TAGS,
  LOG_SPAN,
  LOG_TTL_SECS,
  SEQ_SK,
  expiresAt,
  logPk,
  logSk,
  seqPk,
  validStorefront,
} from "../dist/table.js";

const contract = JSON.parse(
  readFileSync(new URL("../../../contracts/tag-table.json", import.meta.url), "utf8"),
);

test("the constants are the contract's", () => {
  const c = contract.constants;
  assert.deepEqual(
    [LOG_SPAN, LOG_TTL_SECS, LOG_ITEM_TAGS, SEQ_SK],
    [c.logSpan, c.logTtlSecs, c.logItemTags, c.seqSk],
  );
});

test("every key is the contract's", () => {
  for (const v of contract.keys) {
    assert.equal(seqPk(v.storefront), v.seqPk);
    assert.equal(logPk(v.storefront, v.position), v.logPk);
    assert.equal(logSk(v.position), v.logSk);
  }
  for (const v of contract.expiresAt) assert.equal(expiresAt(v.atMs), v.expiresAt);
});

test("storefront names are accepted and refused as the contract says", () => {
  for (const name of contract.storefronts.valid) assert.equal(validStorefront(name), true, name);
  for (const name of contract.storefronts.invalid) assert.equal(validStorefront(name), false, name);
  assert.ok(contract.storefronts.valid.some((n: string) => n.length === contract.constants.maxStorefrontLen));
});
