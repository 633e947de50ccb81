import { useEffect, useState } from "react";
import { useMutation } from "urql";
import { ProductsDocument, RestockProductDocument, type ProductFieldsFragment } from "../generated/graphql";
import type { CartState } from "./Cart";
import { describeError } from "./errors";
import { useLiveProducts, useFreshQuery } from "./live";
import type { Session } from "./session";

const PAGE = 12;
export const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
const LEVEL_TEXT = { IN_STOCK: "In stock", LOW_STOCK: "Low stock", OUT_OF_STOCK: "Out of stock" } as const;

export function Catalog({ session, cart }: { session: Session | null; cart: CartState }) {
  const [typed, setTyped] = useState("");
  const [search, setSearch] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]); // the page's `after`, one per page visited
  useEffect(() => {
    const timer = setTimeout(() => {
      setSearch(typed.trim());
      setCursors([null]);
    }, 250);
    return () => clearTimeout(timer);
  }, [typed]);
  const [{ data, fetching, error }] = useFreshQuery({
    query: ProductsDocument,
    variables: { filter: search ? { search } : null, first: PAGE, after: cursors.at(-1) ?? null },
  });
  const products = useLiveProducts(data?.products.edges.map((e) => e.node));
  const page = data?.products;

  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title">Catalog</h1>
      <label className="search">
        Search <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} />
      </label>
      {error && <p role="alert">{describeError(error)}</p>}
      {page && (
        <p className="muted">
          {page.totalCount} product{page.totalCount === 1 ? "" : "s"}
        </p>
      )}
      <ul className="products">
        {products.map((p) => (
          <ProductCard key={p.id} product={p} session={session} cart={cart} />
        ))}
      </ul>
      {!fetching && page?.totalCount === 0 && <p>No products yet.</p>}
      <div className="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous
        </button>
        <button
          type="button"
          disabled={!page?.pageInfo.hasNextPage}
          onClick={() => setCursors((c) => [...c, page!.pageInfo.endCursor ?? null])}
        >
          Next
        </button>
      </div>
    </section>
  );
}

function ProductCard({
  product,
  session,
  cart,
}: {
  product: ProductFieldsFragment;
  session: Session | null;
  cart: CartState;
}) {
  const [restock, restockProduct] = useMutation(RestockProductDocument);
  return (
    <li className="product" data-testid="product" data-sku={product.sku}>
      <h2>{product.name}</h2>
      <p className="muted">{product.sku}</p>
      <p className="price">{money(product.priceCents)}</p>
      <p className={`stock ${product.stockLevel.toLowerCase()}`} data-testid="stock">
        {LEVEL_TEXT[product.stockLevel]}
        {product.stockLevel !== "OUT_OF_STOCK" && <> · {product.available} left</>}
      </p>
      {session?.role !== "admin" && (
        <button type="button" disabled={product.stockLevel === "OUT_OF_STOCK"} onClick={() => cart.add(product)}>
          Add to cart
        </button>
      )}
      {session?.role === "admin" && (
        <button
          type="button"
          disabled={restock.fetching}
          onClick={() => void restockProduct({ input: { productId: product.id, quantity: 10 } })}
        >
          Restock +10
        </button>
      )}
      {restock.error && <p role="alert">{describeError(restock.error)}</p>}
    </li>
  );
}
