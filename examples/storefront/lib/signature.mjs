// Verifies catalog-sync's signed revalidate calls: the same scheme as
// functions/tag-revalidator/src/signature.rs.
//
//   x-catalog-timestamp: Unix seconds
//   x-catalog-nonce:     unique per call
//   x-catalog-signature: v1=<hex HMAC-SHA256(secret, "v1:{timestamp}:{nonce}:{raw body}")>
//
// A call is accepted when the HMAC matches (compared in constant time), the timestamp is within
// WINDOW_SECS of this server's clock, and the nonce was not seen in that window (replays).
import { createHmac, timingSafeEqual } from "node:crypto";

export const WINDOW_SECS = 300;

/** @param {string} secret @param {string} timestamp @param {string} nonce @param {string} body */
export function sign(secret, timestamp, nonce, body) {
  const mac = createHmac("sha256", secret);
  mac.update(`v1:${timestamp}:${nonce}:`);
  mac.update(body);
  return `v1=${mac.digest("hex")}`;
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
 * @param {{secret: string, timestamp: string | null, nonce: string | null, signature: string | null, body: string, now: number, nonces: NonceMemory}} call
 * @returns {null | "missing" | "bad-signature" | "expired" | "replayed"}
 */
export function verify({ secret, timestamp, nonce, signature, body, now, nonces }) {
  if (!timestamp || !nonce || !signature || !/^\d{1,12}$/.test(timestamp) || nonce.length > 128) {
    return "missing";
  }
  const expected = Buffer.from(sign(secret, timestamp, nonce, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "bad-signature";
  if (Math.abs(now - Number(timestamp)) > WINDOW_SECS) return "expired";
  if (!nonces.fresh(nonce, now)) return "replayed";
  return null;
}
