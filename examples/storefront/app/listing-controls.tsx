"use client";
// The sort menu and the in-stock toggle. Each change is a new URL (first page, same page
// size), so every listing is a link a shopper can share and the back button undoes.
import { useRouter } from "next/navigation";
import { SORTS, listingHref } from "../lib/shop.mjs";

type State = { sort: string; inStock: boolean; limit: number; trail: string[] };

export function ListingControls({ storeId, state }: { storeId: string; state: State }) {
  const router = useRouter();
  const go = (change: Partial<State>) =>
    router.push(listingHref(storeId, { ...state, ...change, trail: [] }));
  return (
    <form className="controls" onSubmit={(e) => e.preventDefault()}>
      <label>
        Sort by{" "}
        <select id="sort" value={state.sort} onChange={(e) => go({ sort: e.target.value })}>
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        <input
          id="in-stock"
          type="checkbox"
          checked={state.inStock}
          onChange={(e) => go({ inStock: e.target.checked })}
        />{" "}
        In stock only
      </label>
    </form>
  );
}
