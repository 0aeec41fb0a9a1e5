"use server";
// The cart, kept in a cookie: the only state the storefront holds. Prices and stock are never
// stored in it; the cart page reads them afresh through the listing API.
import { cookies } from "next/headers";
import { CART_COOKIE, addToCart, readCart, writeCart } from "../lib/shop.mjs";

const COOKIE = { path: "/", sameSite: "lax", httpOnly: true, maxAge: 30 * 86_400 } as const;

export async function addToCartAction(form: FormData) {
  const id = String(form.get("productId") ?? "");
  const jar = await cookies();
  const cart = addToCart(readCart(jar.get(CART_COOKIE)?.value), id);
  jar.set(CART_COOKIE, writeCart(cart), COOKIE);
}

export async function removeFromCartAction(form: FormData) {
  const id = String(form.get("productId") ?? "");
  const jar = await cookies();
  const cart = readCart(jar.get(CART_COOKIE)?.value).filter((i) => i !== id);
  jar.set(CART_COOKIE, writeCart(cart), COOKIE);
}
