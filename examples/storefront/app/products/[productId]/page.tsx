import { notFound } from "next/navigation";
import { addToCartAction } from "../../actions";
import { formatPrice, getProduct, stockLabel } from "../../../lib/catalog";

export default async function ProductPage({ params }: { params: Promise<{ productId: string }> }) {
  const { productId } = await params;
  const product = await getProduct(productId);
  if (!product) notFound();
  return (
    <main data-product-id={product.productId}>
      <h1>{product.title}</h1>
      {product.primaryImageUrl ? (
        // eslint-disable-next-line @next/next/no-img-element -- placeholders, no optimizer needed
        <img src={product.primaryImageUrl} alt="" width={480} height={360} />
      ) : null}
      <p className="price">{formatPrice(product.price)}</p>
      <p className="stock">{stockLabel(product)}</p>
      <form action={addToCartAction}>
        <input type="hidden" name="productId" value={product.productId} />
        <button className="add" type="submit" disabled={stockLabel(product) === "Out of stock"}>
          Add to cart
        </button>
      </form>
      <p>
        <a href="/cart">Cart</a>
      </p>
      <p>
        <a href={`/stores/${product.storeId}`}>More from {product.storeId}</a>
      </p>
    </main>
  );
}
