import { test } from "node:test";
import assert from "node:assert/strict";
import { NonceMemory, WINDOW_SECS, sign, verify } from "./signature.mjs";

const NOW = 1_795_650_000;
const body = '{"tags":["product:p1"]}';

function call(overrides = {}) {
  const timestamp = String(NOW);
  return {
    secret: "secret",
    timestamp,
    nonce: "n1",
    signature: sign("secret", timestamp, "n1", body),
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
  assert.equal(verify(call({ secret: "other" })), "bad-signature");
  assert.equal(verify(call({ body: '{"tags":["product:p2"]}' })), "bad-signature");
  assert.equal(verify(call({ signature: "v1=" + "0".repeat(64) })), "bad-signature");
  assert.equal(verify(call({ signature: "v1=short" })), "bad-signature");
  assert.equal(verify(call({ now: NOW + WINDOW_SECS + 1 })), "expired");
  assert.equal(verify(call({ signature: null })), "missing");
  assert.equal(verify(call({ timestamp: "soon" })), "missing");
});

test("the same vector as the Rust signer", () => {
  // functions/tag-revalidator/src/signature.rs, matches_a_known_vector.
  assert.equal(
    sign("test-secret", "1700000000", "abc", '{"tags":["product:p1"]}'),
    "v1=b84b8d69557bc23170bb560d1605fb370ab43292d85196f03ba21b574350c1b8",
  );
});
