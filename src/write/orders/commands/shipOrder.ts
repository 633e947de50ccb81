import { invalidState } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { defineCommand } from "../../command";
import { loadOrder, moveStock, saveOrderStatus, type OrderState } from "../order.state";
import { ORDER_STREAM, type OrderShipped } from "../orders.events";

export interface ShipOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

export function decide(order: OrderState): NewEvent<OrderShipped["type"], OrderShipped["data"]>[] {
  if (order.status !== "PAID")
    throw invalidState(`only a PAID order can be shipped; this one is ${order.status}`, { status: order.status });
  return [
    {
      streamId: order.id,
      streamType: ORDER_STREAM,
      streamVersion: order.version + 1,
      type: "OrderShipped",
      data: { orderId: order.id, customerId: order.customerId, lines: order.lines },
    },
  ];
}

export const shipOrder = defineCommand<ShipOrder, { orderId: string }>({
  name: "shipOrder",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  resultOf: (streamId) => ({ orderId: streamId }),
  async handle(sql, input, { actor, now }) {
    const order = await loadOrder(sql, input.orderId, actor);
    const events = decide(order);
    const saved = Promise.all([
      saveOrderStatus(sql, order, "SHIPPED", events[0]!.streamVersion, now),
      moveStock(sql, order.lines, { onHand: -1, reserved: -1, available: 0 }),
    ]);
    return { events, result: { orderId: order.id }, saved };
  },
});
