import { useCallback, useEffect, useMemo, useState } from "react";
import { Provider } from "urql";
import { apiClient } from "./client";
import { Admin } from "./Admin";
import { Cart, useCart } from "./Cart";
import { Catalog } from "./Catalog";
import { MyOrders } from "./MyOrders";
import { Reconnections } from "./live";
import { demoToken, decodeSession, loadSession, saveSession, type Session } from "./session";

type Route = "catalog" | "cart" | "orders" | "admin";
const routeOf = (hash: string): Route =>
  (["cart", "orders", "admin"] as const).find((r) => hash === `#/${r}`) ?? "catalog";

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [route, setRoute] = useState<Route>(() => routeOf(location.hash));
  // Bumped after the socket reconnects (a server restart): the pages refetch what they show.
  const [generation, setGeneration] = useState(0);
  const api = useMemo(() => apiClient(session?.token, () => setGeneration((g) => g + 1)), [session?.token]);
  useEffect(() => () => api.close(), [api]);
  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const signIn = useCallback((next: Session | null) => {
    saveSession(next);
    setSession(next);
  }, []);
  const cart = useCart();

  return (
    <Provider value={api.client}>
      <header className="top">
        <a className="brand" href="#/">
          Shop
        </a>
        <nav aria-label="Pages">
          <a href="#/" aria-current={route === "catalog" ? "page" : undefined}>
            Catalog
          </a>
          <a href="#/cart" aria-current={route === "cart" ? "page" : undefined}>
            Cart ({cart.count})
          </a>
          {session?.role === "customer" && (
            <a href="#/orders" aria-current={route === "orders" ? "page" : undefined}>
              My orders
            </a>
          )}
          {session?.role === "admin" && (
            <a href="#/admin" aria-current={route === "admin" ? "page" : undefined}>
              Admin
            </a>
          )}
        </nav>
        <SignIn session={session} onChange={signIn} />
      </header>
      <main>
        <Reconnections.Provider value={generation}>
          {route === "catalog" && <Catalog session={session} cart={cart} />}
          {route === "cart" && <Cart session={session} cart={cart} />}
          {route === "orders" && session?.role === "customer" && <MyOrders />}
          {route === "admin" && session?.role === "admin" && <Admin />}
        </Reconnections.Provider>
      </main>
    </Provider>
  );
}

function SignIn({ session, onChange }: { session: Session | null; onChange: (s: Session | null) => void }) {
  const [error, setError] = useState<string>();
  const [pasting, setPasting] = useState(false);
  const demo = (role: "customer" | "admin") =>
    demoToken(role).then(
      (s) => {
        setError(undefined);
        onChange(s);
      },
      (e: Error) => setError(e.message),
    );
  if (session)
    return (
      <div className="session">
        <span data-testid="signed-in">
          {session.role === "admin" ? "Admin" : "Customer"} {session.sub}
        </span>
        <button type="button" onClick={() => onChange(null)}>
          Sign out
        </button>
      </div>
    );
  return (
    <div className="session">
      <button type="button" onClick={() => void demo("customer")}>
        Sign in as a demo customer
      </button>
      <button type="button" onClick={() => void demo("admin")}>
        Sign in as admin
      </button>
      {pasting ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const token = new FormData(e.currentTarget).get("token");
            const s = typeof token === "string" ? decodeSession(token.trim()) : null;
            if (s) onChange(s);
            else setError("That is not a token with a customer or admin role");
          }}
        >
          <label>
            Token <input name="token" autoComplete="off" />
          </label>
          <button type="submit">Use</button>
        </form>
      ) : (
        <button type="button" onClick={() => setPasting(true)}>
          Paste a token
        </button>
      )}
      {error && <p role="alert">{error}</p>}
    </div>
  );
}
