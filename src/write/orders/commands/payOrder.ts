import { invalidState } from "../../../shared/errors";
import type { NewEvent } from "../../../shared/events";
import { defineCommand } from "../../command";
import { loadOrder, saveOrderStatus, type OrderState } from "../order.state";
import { ORDER_STREAM, type OrderPaid } from "../orders.events";

export interface PayOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

export function decide(order: OrderState): NewEvent<OrderPaid["type"], OrderPaid["data"]>[] {
  if (order.status !== "PLACED")
    throw invalidState(`only a PLACED order can be paid; this one is ${order.status}`, { status: order.status });
  return [
    {
      streamId: order.id,
      streamType: ORDER_STREAM,
      streamVersion: order.version + 1,
      type: "OrderPaid",
      data: { orderId: order.id, customerId: order.customerId },
    },
  ];
}

export const payOrder = defineCommand<PayOrder, { orderId: string }>({
  name: "payOrder",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  resultOf: (streamId) => ({ orderId: streamId }),
  async handle(sql, input, { actor, now }) {
    const order = await loadOrder(sql, input.orderId, actor);
    const events = decide(order);
    const saved = saveOrderStatus(sql, order, "PAID", events[0]!.streamVersion, now);
    return { events, result: { orderId: order.id }, saved };
  },
});
