import { cookies } from "next/headers";
import { notFound, redirect } from "next/navigation";
import { ListingControls } from "../../listing-controls";
import { ProductCard } from "../../product-card";
import { listStore, type Sort } from "../../../lib/catalog";
import { CART_COOKIE, listingHref, listingState, nextHref, previousHref, readCart } from "../../../lib/shop.mjs";

type Props = {
  params: Promise<{ storeId: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
};

export default async function StorePage({ params, searchParams }: Props) {
  const { storeId } = await params;
  const state = listingState(await searchParams);
  const listing = await listStore(storeId, {
    sort: state.sort as Sort,
    inStock: state.inStock,
    limit: state.limit,
    cursor: state.trail.at(-1),
  });
  // A cursor the API refuses (expired, or signed with a key rotated out since): start again
  // from the first page rather than show an error.
  if (!listing && state.trail.length > 0) redirect(listingHref(storeId, { ...state, trail: [] }));
  if (!listing) notFound();
  const inCart = readCart((await cookies()).get(CART_COOKIE)?.value).length;
  const previous = previousHref(storeId, state);
  const next = nextHref(storeId, state, listing.nextCursor);
  return (
    <main>
      <header className="bar">
        <h1>Store {storeId}</h1>
        <a id="cart-link" href="/cart">
          Cart ({inCart})
        </a>
      </header>
      <ListingControls storeId={storeId} state={state} />
      {listing.items.length === 0 ? <p>Nothing to show here.</p> : null}
      <ul id="products" className="grid">
        {listing.items.map((p) => (
          <ProductCard key={p.productId} product={p} />
        ))}
      </ul>
      <nav className="pages">
        {previous ? <a id="previous" href={previous}>← Previous</a> : <span />}
        <span id="page-number">Page {state.trail.length + 1}</span>
        {next ? <a id="next" href={next}>Next →</a> : <span />}
      </nav>
      <p id="rendered-at">rendered at {new Date().toISOString()}</p>
    </main>
  );
}
