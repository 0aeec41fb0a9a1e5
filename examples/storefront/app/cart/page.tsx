import { cookies } from "next/headers";
import { removeFromCartAction } from "../actions";
import { formatPrice, getCart, stockLabel } from "../../lib/catalog";
import { CART_COOKIE, readCart } from "../../lib/shop.mjs";

/** The cart: current prices and stock for every product in the cookie, in one batchGet. */
export default async function CartPage() {
  const ids = readCart((await cookies()).get(CART_COOKIE)?.value);
  const cards = await getCart(ids);
  const byId = new Map(cards.products.map((c) => [c.productId, c]));
  let total = 0;
  return (
    <main>
      <header className="bar">
        <h1>Your cart</h1>
        <a href="/stores/store-1">Continue shopping</a>
      </header>
      {ids.length === 0 ? <p>Your cart is empty.</p> : null}
      <ul id="cart" className="lines">
        {ids.map((id) => {
          const onSale = byId.get(id) ?? null;
          const badge = onSale ? stockLabel(onSale) : "No longer available";
          const buyable = onSale !== null && badge !== "Out of stock";
          if (buyable) total += onSale.price;
          return (
            <li key={id} data-product-id={id} className={buyable ? "line" : "line unavailable"}>
              <a className="title" href={`/products/${encodeURIComponent(id)}`}>
                {onSale?.title ?? id}
              </a>
              <span className="price">{onSale ? formatPrice(onSale.price) : ""}</span>
              <span className="stock">{badge}</span>
              <form action={removeFromCartAction}>
                <input type="hidden" name="productId" value={id} />
                <button type="submit">Remove</button>
              </form>
            </li>
          );
        })}
      </ul>
      <p id="total">Total {formatPrice(total)}</p>
      <p id="rendered-at">rendered at {new Date().toISOString()}</p>
    </main>
  );
}
