import type { OrderShipped } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { moveStock } from "../../catalog/inventory";
import { loadOrder, orderOf, orderStream, saveStatus, type OrderState } from "../order.state";

export interface ShipOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

/** The reserved stock leaves the warehouse. */
export function decide(order: OrderState): OrderShipped[] {
  if (order.status !== "PAID") {
    throw invalidState(`only a PAID order can be shipped; this one is ${order.status}`, { status: order.status });
  }
  return [{ type: "OrderShipped", data: { orderId: order.id, customerId: order.customerId, lines: order.lines } }];
}

export const shipOrder = defineCommand<ShipOrder, OrderState, OrderShipped, { orderId: string }, OrderState>({
  name: "shipOrder",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  load: (input) => loadOrder(input.orderId, true),
  state: ([row], input, { actor }) => orderOf(row, input.orderId, actor),
  decide,
  stream: orderStream,
  save: (order, events, { now }) => [saveStatus(order, events, now), moveStock(events)],
  result: (order) => ({ orderId: order.id }),
});
