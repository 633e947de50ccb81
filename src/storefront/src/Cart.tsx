import { useCallback, useEffect, useState } from "react";
import { useMutation } from "urql";
import { PlaceOrderDocument, type ProductFieldsFragment } from "../generated/graphql";
import { describeError } from "./errors";
import { money } from "./Catalog";
import type { Session } from "./session";

interface Line {
  productId: string;
  name: string;
  priceCents: number;
  quantity: number;
}

const CART = "shop.cart";
/** The idempotency key of the checkout under way: kept until it succeeds, so a retry or a second click places one order. */
const CHECKOUT_KEY = "shop.checkoutKey";

export type CartState = ReturnType<typeof useCart>;

/** The cart, kept in the browser (localStorage), shared by the catalog and the cart page. */
export function useCart() {
  const [lines, setLines] = useState<Line[]>(() => JSON.parse(localStorage.getItem(CART) ?? "[]") as Line[]);
  useEffect(() => localStorage.setItem(CART, JSON.stringify(lines)), [lines]);
  const add = useCallback((p: ProductFieldsFragment) => {
    setLines((current) => {
      const line = current.find((l) => l.productId === p.id);
      return line
        ? current.map((l) => (l === line ? { ...l, quantity: l.quantity + 1 } : l))
        : [...current, { productId: p.id, name: p.name, priceCents: p.priceCents, quantity: 1 }];
    });
  }, []);
  const setQuantity = useCallback((productId: string, quantity: number) => {
    setLines((current) =>
      quantity > 0
        ? current.map((l) => (l.productId === productId ? { ...l, quantity } : l))
        : current.filter((l) => l.productId !== productId),
    );
  }, []);
  const clear = useCallback(() => setLines([]), []);
  return { lines, add, setQuantity, clear, count: lines.reduce((n, l) => n + l.quantity, 0) };
}

export function Cart({ session, cart }: { session: Session | null; cart: CartState }) {
  const [placing, placeOrder] = useMutation(PlaceOrderDocument);
  const [error, setError] = useState<string>();
  const [placed, setPlaced] = useState<string>();
  const total = cart.lines.reduce((sum, l) => sum + l.priceCents * l.quantity, 0);
  const nameOf = (id: string) => cart.lines.find((l) => l.productId === id)?.name;

  async function checkout() {
    if (placing.fetching) return;
    const key = localStorage.getItem(CHECKOUT_KEY) ?? crypto.randomUUID();
    localStorage.setItem(CHECKOUT_KEY, key);
    setError(undefined);
    const result = await placeOrder({
      input: { idempotencyKey: key, lines: cart.lines.map((l) => ({ productId: l.productId, quantity: l.quantity })) },
    });
    if (result.error) {
      // Unknown outcome (the network, or a retryable server error): keep the key, so trying again
      // answers as the first attempt did. A refusal: the cart changes, so the next try is a new order.
      const unknown = !result.error.graphQLErrors.length || result.error.graphQLErrors[0]?.extensions?.retryable;
      if (!unknown) localStorage.removeItem(CHECKOUT_KEY);
      setError(describeError(result.error, nameOf));
      return;
    }
    localStorage.removeItem(CHECKOUT_KEY);
    setPlaced(result.data?.placeOrder.order?.id ?? "your order");
    cart.clear();
  }

  return (
    <section aria-labelledby="cart-title">
      <h1 id="cart-title">Cart</h1>
      {placed && (
        <p role="status">
          Order placed. <a href="#/orders">See my orders</a>
        </p>
      )}
      {cart.lines.length === 0 ? (
        <p>The cart is empty.</p>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Quantity</th>
                <th scope="col">Price</th>
              </tr>
            </thead>
            <tbody>
              {cart.lines.map((l) => (
                <tr key={l.productId}>
                  <td>{l.name}</td>
                  <td>
                    <input
                      type="number"
                      min={0}
                      aria-label={`Quantity of ${l.name}`}
                      value={l.quantity}
                      onChange={(e) => cart.setQuantity(l.productId, Number(e.target.value))}
                    />
                  </td>
                  <td>{money(l.priceCents * l.quantity)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="price">Total {money(total)}</p>
          {session?.role === "customer" ? (
            <button type="button" disabled={placing.fetching} onClick={() => void checkout()}>
              {placing.fetching ? "Placing the order…" : "Place order"}
            </button>
          ) : (
            <p>Sign in as a customer to order.</p>
          )}
        </>
      )}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
