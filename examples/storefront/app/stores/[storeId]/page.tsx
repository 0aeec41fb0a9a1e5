import { notFound } from "next/navigation";
import { formatPrice, listStore, stockLabel } from "../../../lib/catalog";

export default async function StorePage({ params }: { params: Promise<{ storeId: string }> }) {
  const { storeId } = await params;
  const listing = await listStore(storeId);
  if (!listing) notFound();
  return (
    <main>
      <h1>Store {storeId}</h1>
      <ul id="products">
        {listing.items.map((p) => (
          <li key={p.productId} data-product-id={p.productId}>
            <a href={`/products/${p.productId}`}>{p.title}</a>
            {" — "}
            <span className="price">{formatPrice(p.price)}</span>
            {" — "}
            <span className="stock">{stockLabel(p)}</span>
          </li>
        ))}
      </ul>
      <p id="rendered-at">rendered at {new Date().toISOString()}</p>
    </main>
  );
}
