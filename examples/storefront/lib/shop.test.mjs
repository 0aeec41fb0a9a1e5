import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PAGE_SIZE, addToCart, listingHref, listingState, nextHref, previousHref, readCart, writeCart,
} from "./shop.mjs";

test("a store page's URL round-trips its listing state", () => {
  const state = { sort: "price_asc", inStock: true, limit: 4, trail: ["k.a.b", "k1.c-d.e_f"] };
  const href = listingHref("store-1", state);
  const query = Object.fromEntries(new URL(href, "http://x").searchParams);
  assert.deepEqual(listingState(query), state);
  assert.equal(listingHref("store-1", listingState({})), "/stores/store-1");
});

test("unknown sorts, bad limits and junk cursors (old two-part ones too) fall back to the defaults", () => {
  const state = listingState({ sort: "cheapest", limit: "1000", inStock: "yes", at: "x,<script>,a.b,k.a.b" });
  assert.deepEqual(state, { sort: "title", inStock: false, limit: PAGE_SIZE, trail: ["k.a.b"] });
});

test("next and previous walk the cursor trail", () => {
  const first = listingState({ sort: "newest" });
  assert.equal(previousHref("s", first), null);
  assert.equal(nextHref("s", first, undefined), null);
  const second = listingState(Object.fromEntries(new URL(nextHref("s", first, "k.c1.x"), "http://x").searchParams));
  assert.deepEqual(second.trail, ["k.c1.x"]);
  assert.equal(previousHref("s", second), "/stores/s?sort=newest");
});

test("the cart cookie keeps valid ids once, in order, and survives odd characters", () => {
  let cart = addToCart([], "p-1");
  cart = addToCart(cart, "p/ü");
  cart = addToCart(cart, "p-1");
  assert.deepEqual(cart, ["p/ü", "p-1"]);
  assert.deepEqual(readCart(writeCart(cart)), cart);
  assert.deepEqual(addToCart(cart, "has space"), cart);
  assert.deepEqual(readCart("a,,b,a,%E0%A4%A"), ["a", "b"]);
});
