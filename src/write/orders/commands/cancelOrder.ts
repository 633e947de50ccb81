import type { OrderCancelled } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { moveStock } from "../../catalog/inventory";
import { loadOrder, orderOf, orderStream, saveStatus, type OrderState } from "../order.state";

export interface CancelOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

/** Cancelling is allowed until the order ships; it releases the reserved stock. */
export function decide(order: OrderState): OrderCancelled[] {
  if (order.status !== "PLACED" && order.status !== "PAID") {
    throw invalidState(`an order that is ${order.status} cannot be cancelled`, { status: order.status });
  }
  return [
    {
      type: "OrderCancelled",
      data: { orderId: order.id, customerId: order.customerId, previousStatus: order.status, lines: order.lines },
    },
  ];
}

export const cancelOrder = defineCommand<CancelOrder, OrderState, OrderCancelled, { orderId: string }, OrderState>({
  name: "cancelOrder",
  roles: ["customer", "admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  load: (input) => loadOrder(input.orderId, true),
  state: ([row], input, { actor }) => orderOf(row, input.orderId, actor),
  decide,
  stream: orderStream,
  save: (order, events, { now }) => [saveStatus(order, events, now), moveStock(events)],
  result: (order) => ({ orderId: order.id }),
});
