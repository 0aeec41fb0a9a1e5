// Reads from catalog-sync's listing API, tagged with the same cache tags catalog-sync
// revalidates, so pages are served from Next.js's cache until a change revalidates them, or
// at the latest BACKSTOP_SECONDS after they were fetched.

/**
 * The outer bound on a cached read: if an invalidation is ever lost (a dead-lettered tag, a
 * listing check abandoned after 15 minutes, a storefront that was down and missed a call), a
 * page is refetched in the background on its first request after this many seconds. Costs at
 * most one extra render, and one API call per fetch on it, per cached page and instance every
 * five minutes, and only for pages that are visited.
 */
export const BACKSTOP_SECONDS = 300;

// The listing API's types come from docs/openapi.yaml, through lib/api.d.ts, which
// `npm run api-types` generates (scripts/test fails when it is out of date).
import type { components, operations } from "./api";

/** A product's card (`price` in minor units; no `inventoryAvailable`: stock not tracked). */
export type ProductSummary = components["schemas"]["Card"];

export type Listing = components["responses"]["Listing"]["content"]["application/json"];

/** The listing API's base URL (catalog-local prints it; on AWS the stack output ListingApiUrl). */
export function apiUrl(): string {
  const url = process.env.LISTING_API_URL;
  if (!url) throw new Error("LISTING_API_URL is not set");
  return url.replace(/\/$/, "");
}

export const tags = {
  product: (id: string) => `product:${id}`,
  inventory: (id: string) => `inventory:${id}`,
  store: (storeId: string) => `store:${storeId}:products`,
};

/** The listing API's sorts; lib/shop.mjs has them with their menu labels. */
export type Sort = components["parameters"]["Sort"];

export type ListingQuery = { sort: Sort; inStock: boolean; cursor?: string; limit: number };

/**
 * One page of a store's active products in the order asked for, cached under the store's
 * listing tag: every sort and filter of a store is revalidated by that one tag.
 */
export async function listStore(storeId: string, query: ListingQuery): Promise<Listing | null> {
  const params = new URLSearchParams({ limit: String(query.limit), sort: query.sort });
  if (query.inStock) params.set("inStock", "true");
  if (query.cursor) params.set("cursor", query.cursor);
  const response = await fetch(
    `${apiUrl()}/stores/${encodeURIComponent(storeId)}/products?${params}`,
    { cache: "force-cache", next: { tags: [tags.store(storeId)], revalidate: BACKSTOP_SECONDS } },
  );
  if (response.status === 400 || response.status === 404) return null;
  if (!response.ok) throw new Error(`listing API answered ${response.status}`);
  return response.json();
}

/** The cards on sale; every other id (unknown, draft, archived, deleted) is in `missing`. */
export type CartCards =
  operations["batchGetProducts"]["responses"][200]["content"]["application/json"];

/**
 * A cart's cards in one `POST /products:batchGet`, cached under each product's product and
 * inventory tags (a POST with `force-cache` is cached by its body, so the ids are sorted).
 */
export async function getCart(ids: string[]): Promise<CartCards> {
  if (ids.length === 0) return { products: [], missing: [] };
  const sorted = [...new Set(ids)].sort();
  const response = await fetch(`${apiUrl()}/products:batchGet`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ productIds: sorted }),
    cache: "force-cache",
    next: {
      tags: sorted.flatMap((id) => [tags.product(id), tags.inventory(id)]),
      revalidate: BACKSTOP_SECONDS,
    },
  });
  if (!response.ok) throw new Error(`listing API answered ${response.status}`);
  return response.json();
}

/**
 * One product's summary while it is on sale (else null: the API answers 404 for a draft,
 * archived or deleted product as for an unknown id), cached under its product and inventory
 * tags.
 */
export async function getProduct(productId: string): Promise<ProductSummary | null> {
  const response = await fetch(`${apiUrl()}/products/${encodeURIComponent(productId)}`, {
    cache: "force-cache",
    next: { tags: [tags.product(productId), tags.inventory(productId)], revalidate: BACKSTOP_SECONDS },
  });
  if (response.status === 400 || response.status === 404) return null;
  if (!response.ok) throw new Error(`listing API answered ${response.status}`);
  return response.json();
}

export function formatPrice(minor: number): string {
  return `$${(minor / 100).toFixed(2)}`;
}

/** Stock at or below this shows as "Only N left". */
export const LOW_STOCK = 5;

export function stockLabel(p: ProductSummary): string {
  const units = p.inventoryAvailable;
  if (units === undefined) return "Available";
  if (units <= 0) return "Out of stock";
  return units <= LOW_STOCK ? `Only ${units} left` : `${units} in stock`;
}
