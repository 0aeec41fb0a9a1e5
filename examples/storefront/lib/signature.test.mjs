import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { NonceMemory, WINDOW_SECS, deriveKey, parseKey, sign, verify } from "./signature.mjs";

const NOW = 1_795_650_000;
const SECRET = "0123456789abcdef0123456789abcdef";
const AUDIENCE = "https://shop-a.example.com/api/revalidate";
const KEY = deriveKey(SECRET, AUDIENCE);
const body = '{"tags":["product:p1"]}';
const vectors = JSON.parse(readFileSync(new URL("../../../contracts/signature-vectors.json", import.meta.url)));

function call(overrides = {}) {
  const timestamp = String(NOW);
  return {
    keys: [KEY],
    audience: AUDIENCE,
    timestamp,
    nonce: "nonce-0001",
    signature: sign(KEY, AUDIENCE, timestamp, "nonce-0001", body),
    body,
    now: NOW,
    nonces: new NonceMemory(),
    ...overrides,
  };
}

test("a genuine call is accepted once; its replay is refused", () => {
  const nonces = new NonceMemory();
  assert.equal(verify(call({ nonces })), null);
  assert.equal(verify(call({ nonces })), "replayed");
});

test("forged, tampered, expired and incomplete calls are refused", () => {
  assert.equal(verify(call({ keys: [deriveKey("another-secret-of-32-bytes-or-more", AUDIENCE)] })), "bad-signature");
  assert.equal(verify(call({ body: '{"tags":["product:p2"]}' })), "bad-signature");
  assert.equal(verify(call({ signature: "v3=" + "0".repeat(64) })), "bad-signature");
  assert.equal(verify(call({ signature: "v3=short" })), "bad-signature");
  assert.equal(verify(call({ now: NOW + WINDOW_SECS + 1 })), "expired");
  assert.equal(verify(call({ signature: null })), "missing");
  assert.equal(verify(call({ timestamp: "soon" })), "missing");
});

test("one storefront's key verifies and signs for no other", () => {
  const other = "https://shop-b.example.com/api/revalidate";
  const otherKey = deriveKey(SECRET, other);
  assert.equal(verify(call({ audience: other, keys: [otherKey] })), "bad-signature");
  const forged = sign(otherKey, AUDIENCE, String(NOW), "nonce-0001", body);
  assert.equal(verify(call({ signature: forged })), "bad-signature");
});

test("during a rotation calls signed under either key verify, after it only the new", () => {
  const next = deriveKey("the-new-secret-of-32-bytes-or-more", AUDIENCE);
  const signedNew = sign(next, AUDIENCE, String(NOW), "nonce-0001", body);
  assert.equal(verify(call({ keys: [next, KEY] })), null);
  assert.equal(verify(call({ keys: [next, KEY], signature: signedNew })), null);
  assert.equal(verify(call({ keys: [next] })), "bad-signature");
});

test("keys are read as 64 hex digits only", () => {
  assert.deepEqual(parseKey(KEY.toString("hex")), KEY);
  for (const bad of [undefined, "", KEY.toString("hex").slice(2), "G".repeat(64), SECRET]) {
    assert.equal(parseKey(bad), null, String(bad));
  }
});

test("the signed string cannot be split another way to dodge the nonce memory", () => {
  // The attack on the old "v1:{ts}:{nonce}:{body}" form: move the start of the body into the
  // nonce. The signed bytes stay the same, so the HMAC matched and the "new" nonce passed
  // the nonce memory. Newlines separate the fields now and no nonce may hold one.
  const nonces = new NonceMemory();
  const split = '{"tags":\n["product:p1"]}';
  const first = call({ nonces, body: split, signature: sign(KEY, AUDIENCE, String(NOW), "nonce-0001", split) });
  assert.equal(verify(first), null);
  const shifted = { ...first, nonce: 'nonce-0001\n{"tags":', body: '["product:p1"]}' };
  assert.equal(sign(KEY, AUDIENCE, String(NOW), shifted.nonce, shifted.body), first.signature);
  assert.equal(verify(shifted), "missing");
});

test("nonces outside the alphabet or length are refused before any HMAC", () => {
  for (const nonce of vectors.badNonces) {
    assert.equal(verify(call({ nonce })), "missing", JSON.stringify(nonce));
  }
});

test("the same vectors as the Rust signer", () => {
  // functions/tag-revalidator/src/signature.rs reads the same file.
  for (const v of vectors.signed) {
    const key = deriveKey(v.secret, v.audience);
    assert.equal(key.toString("hex"), v.key);
    assert.equal(sign(key, v.audience, String(v.timestamp), v.nonce, v.body), v.signature);
    const accepted = verify({
      keys: [key],
      audience: v.audience,
      timestamp: String(v.timestamp),
      nonce: v.nonce,
      signature: v.signature,
      body: v.body,
      now: v.timestamp,
      nonces: new NonceMemory(),
    });
    assert.equal(accepted, null);
  }
});
