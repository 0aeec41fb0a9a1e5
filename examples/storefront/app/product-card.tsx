import { addToCartAction } from "./actions";
import { formatPrice, stockLabel, type ProductSummary } from "../lib/catalog";

/** One card of the grid: image, title, price, stock badge and "Add to cart". */
export function ProductCard({ product }: { product: ProductSummary }) {
  const badge = stockLabel(product);
  const soldOut = badge === "Out of stock";
  return (
    <li className="card" data-product-id={product.productId}>
      <a className="title" href={`/products/${encodeURIComponent(product.productId)}`}>
        {product.title}
      </a>
      {product.primaryImageUrl ? (
        // eslint-disable-next-line @next/next/no-img-element -- placeholders, no optimizer needed
        <img src={product.primaryImageUrl} alt="" width={240} height={180} />
      ) : null}
      <span className="price">{formatPrice(product.price)}</span>
      <span className={`stock${soldOut ? " sold-out" : badge.startsWith("Only") ? " low" : ""}`}>
        {badge}
      </span>
      <form action={addToCartAction}>
        <input type="hidden" name="productId" value={product.productId} />
        <button className="add" type="submit" disabled={soldOut}>
          Add to cart
        </button>
      </form>
    </li>
  );
}
