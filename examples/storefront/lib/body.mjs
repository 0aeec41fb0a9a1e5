// Reads a request body up to a byte limit, for routes that anyone on the internet can call:
// a declared Content-Length over the limit is refused before a byte is read, and a body
// without one (chunked) is read only until it passes the limit.

/**
 * The body as UTF-8 text, or null when it is over `maxBytes` bytes.
 * @param {Request} request @param {number} maxBytes
 * @returns {Promise<string | null>}
 */
export async function readLimited(request, maxBytes) {
  const declared = request.headers.get("content-length");
  if (declared !== null && !(/^\d+$/.test(declared) && Number(declared) <= maxBytes)) return null;
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
