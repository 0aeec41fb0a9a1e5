// Reads from catalog-sync's listing API, tagged with the same cache tags catalog-sync
// revalidates, so pages are served from Next.js's cache until a change revalidates them.

export type ProductSummary = {
  productId: string;
  storeId: string;
  title: string;
  price: number; // minor units
  active: boolean;
  inventoryAvailable?: number; // absent: stock not tracked
  primaryImageUrl?: string;
  updatedAt: string;
};

/** What the API shows of a product that is not on sale (draft, archived or deleted). */
export type Unavailable = { productId: string; active: false };

export type Listing = { storeId: string; items: ProductSummary[]; nextCursor?: string };

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

/** One page of a store's active products, cached under the store's listing tag. */
export async function listStore(storeId: string, limit = 24): Promise<Listing | null> {
  const response = await fetch(
    `${apiUrl()}/stores/${encodeURIComponent(storeId)}/products?limit=${limit}`,
    { cache: "force-cache", next: { tags: [tags.store(storeId)] } },
  );
  if (response.status === 400 || response.status === 404) return null;
  if (!response.ok) throw new Error(`listing API answered ${response.status}`);
  return response.json();
}

/** One product's summary, cached under its product and inventory tags. */
export async function getProduct(productId: string): Promise<ProductSummary | Unavailable | null> {
  const response = await fetch(`${apiUrl()}/products/${encodeURIComponent(productId)}`, {
    cache: "force-cache",
    next: { tags: [tags.product(productId), tags.inventory(productId)] },
  });
  if (response.status === 400 || response.status === 404) return null;
  if (!response.ok) throw new Error(`listing API answered ${response.status}`);
  return response.json();
}

export function formatPrice(minor: number): string {
  return `$${(minor / 100).toFixed(2)}`;
}

export function stockLabel(p: ProductSummary): string {
  if (p.inventoryAvailable === undefined) return "Available";
  return p.inventoryAvailable > 0 ? `${p.inventoryAvailable} in stock` : "Out of stock";
}
