// The route catalog-sync's tag-revalidator calls: POST {"tags": [...]}, signed (see
// lib/signature.mjs) with this storefront's own key (REVALIDATE_KEY, and REVALIDATE_KEY_PREVIOUS
// while a rotation is under way) for its audience. 413 for a body over 64 KiB (refused
// before it is read when its length is declared), 401 for a call that is not genuine, 400 for
// a malformed body, else every tag is expired at once (Next 16: revalidateTag(tag,
// { expire: 0 })).
import { revalidateTag } from "next/cache";
import { readLimited } from "../../../lib/body.mjs";
import { NonceMemory, parseKey, validAudience, verify } from "../../../lib/signature.mjs";

const MAX_BODY_BYTES = 64 * 1024;
const MAX_TAGS = 128;
const MAX_TAG_LENGTH = 256;
const nonces = new NonceMemory();

function json(status: number, body: unknown) {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

export async function POST(request: Request) {
  const key = parseKey(process.env.REVALIDATE_KEY);
  if (!key) return json(500, { error: "REVALIDATE_KEY is not 64 hex digits" });
  const previous = process.env.REVALIDATE_KEY_PREVIOUS;
  const previousKey = parseKey(previous);
  if (previous && !previousKey) return json(500, { error: "REVALIDATE_KEY_PREVIOUS is not 64 hex digits" });
  // The URL catalog-sync calls this route at, exactly as listed in its RevalidateEndpoints.
  const audience = process.env.REVALIDATE_AUDIENCE ?? "";
  if (!validAudience(audience)) return json(500, { error: "REVALIDATE_AUDIENCE is not set" });
  const body = await readLimited(request, MAX_BODY_BYTES);
  if (body === null) return json(413, { error: `body over ${MAX_BODY_BYTES} bytes` });
  const refused = verify({
    keys: previousKey ? [key, previousKey] : [key],
    audience,
    timestamp: request.headers.get("x-catalog-timestamp"),
    nonce: request.headers.get("x-catalog-nonce"),
    signature: request.headers.get("x-catalog-signature"),
    body,
    now: Math.floor(Date.now() / 1000),
    nonces,
  });
  if (refused) return json(401, { error: refused });
  let tags: unknown;
  try {
    tags = JSON.parse(body).tags;
  } catch {
    return json(400, { error: "body is not JSON" });
  }
  if (
    !Array.isArray(tags) ||
    tags.length > MAX_TAGS ||
    !tags.every((t) => typeof t === "string" && t.length > 0 && t.length <= MAX_TAG_LENGTH)
  ) {
    return json(400, { error: `tags must be 1..${MAX_TAGS} strings of at most ${MAX_TAG_LENGTH} characters` });
  }
  for (const tag of tags as string[]) revalidateTag(tag, { expire: 0 });
  return json(200, { revalidated: tags.length, now: Date.now() });
}
