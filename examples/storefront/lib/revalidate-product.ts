// revalidateProduct: for server actions after an admin edit, revalidate every tag a product's
// pages are cached under, right away (the same tags catalog-sync's revalidateProduct queues).
import { revalidateTag } from "next/cache";
import { apiUrl, tags } from "./catalog";

/**
 * Revalidates `product:{id}`, `inventory:{id}` and the listing of the product's store (read
 * fresh from the listing API), plus `previousStoreId`'s listing if the edit moved it.
 */
export async function revalidateProduct(productId: string, previousStoreId?: string): Promise<string[]> {
  const response = await fetch(`${apiUrl()}/products/${encodeURIComponent(productId)}`, { cache: "no-store" });
  const stores = new Set<string>();
  if (response.ok) stores.add((await response.json()).storeId);
  if (previousStoreId) stores.add(previousStoreId);
  const all = [tags.product(productId), tags.inventory(productId), ...[...stores].map(tags.store)];
  for (const tag of all) revalidateTag(tag, { expire: 0 });
  return all;
}
