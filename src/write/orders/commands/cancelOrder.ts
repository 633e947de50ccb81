import { invalidState } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { defineCommand } from "../../command";
import { loadOrder, moveStock, saveOrderStatus, type OrderState } from "../order.state";
import { ORDER_STREAM, type OrderCancelled } from "../orders.events";

export interface CancelOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

/** Cancelling is allowed until the order ships; it releases the reserved stock. */
export function decide(order: OrderState): NewEvent<OrderCancelled["type"], OrderCancelled["data"]>[] {
  if (order.status !== "PLACED" && order.status !== "PAID") {
    throw invalidState(`an order that is ${order.status} cannot be cancelled`, { status: order.status });
  }
  return [
    {
      streamId: order.id,
      streamType: ORDER_STREAM,
      streamVersion: order.version + 1,
      type: "OrderCancelled",
      data: { orderId: order.id, customerId: order.customerId, previousStatus: order.status, lines: order.lines },
    },
  ];
}

export const cancelOrder = defineCommand<CancelOrder, { orderId: string }>({
  name: "cancelOrder",
  roles: ["customer", "admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  resultOf: (streamId) => ({ orderId: streamId }),
  async handle(sql, input, { actor, now }) {
    const order = await loadOrder(sql, input.orderId, actor);
    const events = decide(order);
    const saved = Promise.all([
      saveOrderStatus(sql, order, "CANCELLED", events[0]!.streamVersion, now),
      moveStock(sql, order.lines, { onHand: 0, reserved: -1, available: 1 }),
    ]);
    return { events, result: { orderId: order.id }, saved };
  },
});
