import { useEffect, useState } from "react";
import { useMutation } from "urql";
import {
  CreateProductDocument,
  OrdersDocument,
  PayOrderDocument,
  ProjectionsDocument,
  ShipOrderDocument,
  type OrderFieldsFragment,
} from "../generated/graphql";
import { describeError } from "./errors";
import { useLiveOrder, useFreshQuery } from "./live";
import { OrderSummary } from "./MyOrders";

export function Admin() {
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Admin</h1>
      <NewProduct />
      <Orders />
      <Projections />
    </section>
  );
}

function NewProduct() {
  const [created, createProduct] = useMutation(CreateProductDocument);
  return (
    <form
      className="card"
      aria-labelledby="new-product"
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        void createProduct({
          input: {
            sku: String(form.get("sku")),
            name: String(form.get("name")),
            priceCents: Math.round(Number(form.get("price")) * 100),
            initialStock: Number(form.get("stock")),
          },
        });
      }}
    >
      <h2 id="new-product">New product</h2>
      <label>
        SKU <input name="sku" required />
      </label>
      <label>
        Name <input name="name" required />
      </label>
      <label>
        Price ($) <input name="price" type="number" min="0" step="0.01" required />
      </label>
      <label>
        Stock <input name="stock" type="number" min="0" required />
      </label>
      <button type="submit" disabled={created.fetching}>
        Create
      </button>
      {created.error && <p role="alert">{describeError(created.error)}</p>}
      {created.data?.createProduct.product && <p role="status">Created {created.data.createProduct.product.sku}</p>}
    </form>
  );
}

function Orders() {
  const [{ data, error }] = useFreshQuery({ query: OrdersDocument, variables: { first: 20 } });
  return (
    <div className="card">
      <h2>Orders</h2>
      {error && <p role="alert">{describeError(error)}</p>}
      <ul className="orders">
        {data?.orders.edges.map((e) => (
          <AdminOrder key={e.node.id} order={e.node} />
        ))}
      </ul>
    </div>
  );
}

function AdminOrder({ order: initial }: { order: OrderFieldsFragment }) {
  const order = useLiveOrder(initial);
  const [paying, payOrder] = useMutation(PayOrderDocument);
  const [shipping, shipOrder] = useMutation(ShipOrderDocument);
  const error = paying.error ?? shipping.error;
  return (
    <li className="order" data-testid="admin-order">
      <p className="muted">Customer {order.customerId}</p>
      <OrderSummary order={order} />
      {order.status === "PLACED" && (
        <button
          type="button"
          disabled={paying.fetching}
          onClick={() => void payOrder({ input: { orderId: order.id } })}
        >
          Mark paid
        </button>
      )}
      {order.status === "PAID" && (
        <button
          type="button"
          disabled={shipping.fetching}
          onClick={() => void shipOrder({ input: { orderId: order.id } })}
        >
          Ship
        </button>
      )}
      {error && <p role="alert">{describeError(error)}</p>}
    </li>
  );
}

function Projections() {
  const [{ data }, refetch] = useFreshQuery({ query: ProjectionsDocument });
  useEffect(() => {
    const timer = setInterval(() => refetch(), 2000);
    return () => clearInterval(timer);
  }, [refetch]);
  const [now] = useState(() => new Date());
  return (
    <div className="card">
      <h2>Projections</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <th scope="col">Lag (events)</th>
            <th scope="col">Lag (s)</th>
            <th scope="col">Leader</th>
          </tr>
        </thead>
        <tbody>
          {data?.projections.map((p) => (
            <tr key={p.name}>
              <td>{p.name}</td>
              <td>{p.status}</td>
              <td>{p.lagEvents}</td>
              <td>{p.lagSeconds.toFixed(1)}</td>
              <td>{p.leader ?? "none"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">Refreshed every 2 s since {now.toLocaleTimeString()}.</p>
    </div>
  );
}
