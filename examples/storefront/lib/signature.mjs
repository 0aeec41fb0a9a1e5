// Verifies catalog-sync's signed revalidate calls: the same scheme as
// functions/tag-revalidator/src/signature.rs, checked against the same vectors
// (signature-vectors.json).
//
//   x-catalog-timestamp: Unix seconds
//   x-catalog-nonce:     8 to 64 characters of A-Z a-z 0-9 _ -, unique per call
//   x-catalog-signature: v2=<hex HMAC-SHA256(secret, "v2\n{audience}\n{timestamp}\n{nonce}\n{raw body}")>
//
// The audience is the URL catalog-sync calls this storefront at, exactly as listed in its
// RevalidateEndpoints; this side takes it from its own configuration (REVALIDATE_AUDIENCE),
// never from the request, so a call made to one storefront cannot be replayed to another
// that shares the secret. Newlines cannot occur in the audience, the timestamp or the nonce,
// so the signed string splits only one way.
//
// A call is accepted when the HMAC matches (compared in constant time), the timestamp is within
// WINDOW_SECS of this server's clock, and the nonce was not seen in that window (replays).
import { createHmac, timingSafeEqual } from "node:crypto";

export const WINDOW_SECS = 300;
export const NONCE = /^[A-Za-z0-9_-]{8,64}$/;
const TIMESTAMP = /^\d{1,12}$/;
const AUDIENCE = /^[!-~]{1,2048}$/;

/** @param {string} secret @param {string} audience @param {string} timestamp @param {string} nonce @param {string} body */
export function sign(secret, audience, timestamp, nonce, body) {
  const mac = createHmac("sha256", secret);
  mac.update(`v2\n${audience}\n${timestamp}\n${nonce}\n`);
  mac.update(body);
  return `v2=${mac.digest("hex")}`;
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
 * Checks one call. Returns null when it is genuine, else why not.
 * @param {{secret: string, audience: string, timestamp: string | null, nonce: string | null, signature: string | null, body: string, now: number, nonces: NonceMemory}} call
 * @returns {null | "missing" | "bad-signature" | "expired" | "replayed"}
 */
export function verify({ secret, audience, timestamp, nonce, signature, body, now, nonces }) {
  if (!timestamp || !nonce || !signature || !TIMESTAMP.test(timestamp) || !NONCE.test(nonce)) {
    return "missing";
  }
  const expected = Buffer.from(sign(secret, audience, timestamp, nonce, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "bad-signature";
  if (Math.abs(now - Number(timestamp)) > WINDOW_SECS) return "expired";
  if (!nonces.fresh(nonce, now)) return "replayed";
  return null;
}
