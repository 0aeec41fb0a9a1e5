// Verifies catalog-sync's signed revalidate calls: the same scheme as
// functions/tag-revalidator/src/signature.rs, checked against the same vectors
// (contracts/signature-vectors.json).
//
//   x-catalog-timestamp: Unix seconds
//   x-catalog-nonce:     8 to 64 characters of A-Z a-z 0-9 _ -, unique per call
//   x-catalog-signature: v3=<hex HMAC-SHA256(key, "v3\n{audience}\n{timestamp}\n{nonce}\n{raw body}")>
//
// The audience is the URL catalog-sync calls this storefront at, exactly as listed in its
// RevalidateEndpoints; this side takes it from its own configuration (REVALIDATE_AUDIENCE),
// never from the request. The key is this audience's own (REVALIDATE_KEY): catalog-sync
// derives it from its secret with HKDF-SHA256 and the audience, so this storefront holds
// nothing that signs or verifies another's calls. During a rotation it holds two keys.
// Newlines cannot occur in the audience, the timestamp or the nonce, so the signed string
// splits only one way.
//
// A call is accepted when the HMAC under one of the keys matches (compared in constant time),
// the timestamp is within WINDOW_SECS of this server's clock, and the nonce was not seen in
// that window (replays).
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

export const WINDOW_SECS = 60;
export const NONCE = /^[A-Za-z0-9_-]{8,64}$/;
const TIMESTAMP = /^\d{1,12}$/;
const AUDIENCE = /^[!-~]{1,2048}$/;
const KEY = /^[0-9a-f]{64}$/;
const KEY_SALT = "catalog-sync/revalidate/v3";

/**
 * The key of `audience` under catalog-sync's secret, as the revalidator derives it. A
 * storefront is given the result (`catalog-local revalidate-key`), never the secret.
 * @param {string} secret @param {string} audience @returns {Buffer}
 */
export function deriveKey(secret, audience) {
  return Buffer.from(hkdfSync("sha256", secret, KEY_SALT, audience, 32));
}

/** A key as configured (64 lowercase hex digits), or null. @param {string | undefined} text */
export function parseKey(text) {
  return text && KEY.test(text) ? Buffer.from(text, "hex") : null;
}

/** @param {Buffer} key @param {string} audience @param {string} timestamp @param {string} nonce @param {string} body */
export function sign(key, audience, timestamp, nonce, body) {
  const mac = createHmac("sha256", key);
  mac.update(`v3\n${audience}\n${timestamp}\n${nonce}\n`);
  mac.update(body);
  return `v3=${mac.digest("hex")}`;
}

/** Whether `audience` can be signed for: printable ASCII, no spaces. @param {string} audience */
export function validAudience(audience) {
  return AUDIENCE.test(audience);
}

/** Nonces seen within the window, forgotten after it. */
export class NonceMemory {
  /** @type {Map<string, number>} */
  #seen = new Map();

  /** True the first time a nonce is offered within the window. @param {string} nonce @param {number} now */
  fresh(nonce, now) {
    for (const [n, at] of this.#seen) {
      if (now - at > 2 * WINDOW_SECS) this.#seen.delete(n);
      else break;
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, now);
    return true;
  }
}

/**
 * Checks one call against this storefront's keys (current first, then the previous one
 * during a rotation). Returns null when it is genuine, else why not.
 * @param {{keys: Buffer[], audience: string, timestamp: string | null, nonce: string | null, signature: string | null, body: string, now: number, nonces: NonceMemory}} call
 * @returns {null | "missing" | "bad-signature" | "expired" | "replayed"}
 */
export function verify({ keys, audience, timestamp, nonce, signature, body, now, nonces }) {
  if (!timestamp || !nonce || !signature || !TIMESTAMP.test(timestamp) || !NONCE.test(nonce)) {
    return "missing";
  }
  const given = Buffer.from(signature);
  const matches = (key) => {
    const expected = Buffer.from(sign(key, audience, timestamp, nonce, body));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  if (!keys.some(matches)) return "bad-signature";
  if (Math.abs(now - Number(timestamp)) > WINDOW_SECS) return "expired";
  if (!nonces.fresh(nonce, now)) return "replayed";
  return null;
}
