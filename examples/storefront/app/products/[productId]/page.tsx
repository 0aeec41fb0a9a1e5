import { notFound } from "next/navigation";
import { formatPrice, getProduct, stockLabel } from "../../../lib/catalog";

export default async function ProductPage({ params }: { params: Promise<{ productId: string }> }) {
  const { productId } = await params;
  const product = await getProduct(productId);
  if (!product) notFound();
  if (!product.active) {
    return (
      <main data-product-id={product.productId}>
        <h1>No longer available</h1>
      </main>
    );
  }
  return (
    <main data-product-id={product.productId}>
      <h1>{product.title}</h1>
      <p className="price">{formatPrice(product.price)}</p>
      <p className="stock">{stockLabel(product)}</p>
      <p>
        <a href={`/stores/${product.storeId}`}>More from {product.storeId}</a>
      </p>
    </main>
  );
}
