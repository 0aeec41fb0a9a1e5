// The storefront's own pure logic, kept out of the pages so node --test can check it: the
// listing state a store page's URL holds (sort, in-stock toggle, page trail) and the cart
// cookie.

/** The listing API's sorts, in the order the menu shows them. */
export const SORTS = [
  { value: "title", label: "A to Z" },
  { value: "price_asc", label: "Price low to high" },
  { value: "price_desc", label: "Price high to low" },
  { value: "newest", label: "Newest" },
];

export const PAGE_SIZE = 24;
const MAX_PAGE_SIZE = 100;

/** A listing cursor: base64url key id, payload and signature (the API checks the signature). */
const CURSOR = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2}$/;

/**
 * @typedef {{ sort: string, inStock: boolean, limit: number, trail: string[] }} ListingState
 */

/**
 * A store page's listing state from its query: `sort`, `inStock`, `limit`, and `at`, the
 * cursors of the pages walked so far (comma-separated; absent on the first page), so
 * "Previous" is the same URL with the last one dropped. Anything unknown falls back to the
 * default rather than failing the page.
 * @param {Record<string, string | string[] | undefined>} query
 * @returns {ListingState}
 */
export function listingState(query) {
  /** @param {string} name @returns {string | undefined} */
  const one = (name) => (Array.isArray(query[name]) ? query[name][0] : query[name]);
  const asked = one("sort") ?? "";
  const sort = SORTS.some((s) => s.value === asked) ? asked : "title";
  const limit = Number(one("limit"));
  const trail = (one("at") ?? "").split(",").filter((c) => CURSOR.test(c));
  return {
    sort,
    inStock: one("inStock") === "true",
    limit: Number.isInteger(limit) && limit >= 1 && limit <= MAX_PAGE_SIZE ? limit : PAGE_SIZE,
    trail,
  };
}

/**
 * The URL of `storeId`'s page in `state`: defaults left out, so the first page of A to Z is
 * the bare store URL.
 * @param {string} storeId @param {ListingState} state
 */
export function listingHref(storeId, state) {
  const params = new URLSearchParams();
  if (state.sort !== "title") params.set("sort", state.sort);
  if (state.inStock) params.set("inStock", "true");
  if (state.limit !== PAGE_SIZE) params.set("limit", String(state.limit));
  if (state.trail.length > 0) params.set("at", state.trail.join(","));
  const query = params.toString();
  return `/stores/${encodeURIComponent(storeId)}${query ? `?${query}` : ""}`;
}

/**
 * The next page's URL, or null on the last page.
 * @param {string} storeId @param {ListingState} state @param {string | null | undefined} nextCursor
 */
export function nextHref(storeId, state, nextCursor) {
  if (!nextCursor) return null;
  return listingHref(storeId, { ...state, trail: [...state.trail, nextCursor] });
}

/**
 * The previous page's URL, or null on the first page.
 * @param {string} storeId @param {ListingState} state
 */
export function previousHref(storeId, state) {
  if (state.trail.length === 0) return null;
  return listingHref(storeId, { ...state, trail: state.trail.slice(0, -1) });
}

export const CART_COOKIE = "cart";
/** The listing API's batchGet takes up to 100 ids; a cart keeps far fewer. */
export const MAX_CART_ITEMS = 50;
const PRODUCT_ID = /^[^\s,\x00-\x1f\x7f]{1,128}$/;

/** @param {string} text */
function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return "";
  }
}

/**
 * The product ids in a cart cookie, each once, in the order added; junk is dropped.
 * @param {string | undefined} cookie @returns {string[]}
 */
export function readCart(cookie) {
  const ids = (cookie ?? "").split(",").map(decoded).filter((id) => PRODUCT_ID.test(id));
  return [...new Set(ids)].slice(0, MAX_CART_ITEMS);
}

/** The cookie value for `ids` (valid ones only). @param {string[]} ids */
export function writeCart(ids) {
  return ids.filter((id) => PRODUCT_ID.test(id)).map(encodeURIComponent).join(",");
}

/**
 * The cart with `id` added at the end (once), keeping the newest `MAX_CART_ITEMS`.
 * @param {string[]} ids @param {string} id @returns {string[]}
 */
export function addToCart(ids, id) {
  if (!PRODUCT_ID.test(id)) return ids;
  return [...ids.filter((i) => i !== id), id].slice(-MAX_CART_ITEMS);
}
