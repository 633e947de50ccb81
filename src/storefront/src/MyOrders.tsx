import { useMutation } from "urql";
import { CancelOrderDocument, MyOrdersDocument, type OrderFieldsFragment } from "../generated/graphql";
import { describeError } from "./errors";
import { money } from "./Catalog";
import { useCountdown, useLiveOrder, useFreshQuery } from "./live";

export function MyOrders() {
  const [{ data, error }] = useFreshQuery({ query: MyOrdersDocument, variables: { first: 20 } });
  return (
    <section aria-labelledby="orders-title">
      <h1 id="orders-title">My orders</h1>
      {error && <p role="alert">{describeError(error)}</p>}
      {data?.myOrders.totalCount === 0 && <p>No orders yet.</p>}
      <ul className="orders">
        {data?.myOrders.edges.map((e) => (
          <OrderItem key={e.node.id} order={e.node} />
        ))}
      </ul>
    </section>
  );
}

export function OrderSummary({ order }: { order: OrderFieldsFragment }) {
  const seconds = useCountdown(order.status === "PLACED" ? order.expiresAt : null);
  return (
    <>
      <p>
        <strong data-testid="order-status">{order.status}</strong>
        {order.cancellationReason && <> ({order.cancellationReason.replace("_", " ").toLowerCase()})</>} ·{" "}
        {order.itemCount} item{order.itemCount === 1 ? "" : "s"} · {money(order.totalCents)} · placed{" "}
        {new Date(order.placedAt).toLocaleString()}
      </p>
      <p className="muted">{order.lines.map((l) => `${l.quantity} × ${l.name}`).join(", ")}</p>
      {seconds !== null && (
        <p className="muted" data-testid="deadline">
          To be paid within {Math.floor(seconds / 60)}:{String(seconds % 60).padStart(2, "0")}
        </p>
      )}
    </>
  );
}

function OrderItem({ order: initial }: { order: OrderFieldsFragment }) {
  const order = useLiveOrder(initial);
  const [cancelling, cancelOrder] = useMutation(CancelOrderDocument);
  return (
    <li className="order" data-testid="order">
      <OrderSummary order={order} />
      {(order.status === "PLACED" || order.status === "PAID") && (
        <button
          type="button"
          disabled={cancelling.fetching}
          onClick={() => void cancelOrder({ input: { orderId: order.id } })}
        >
          Cancel
        </button>
      )}
      {cancelling.error && <p role="alert">{describeError(cancelling.error)}</p>}
    </li>
  );
}
