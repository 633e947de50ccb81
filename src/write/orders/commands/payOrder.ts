import type { OrderPaid } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { loadOrder, orderOf, orderStream, saveStatus, type OrderState } from "../order.state";

export interface PayOrder {
  /** Optional: a retry with the same key returns the first outcome and changes nothing. */
  idempotencyKey?: string | null;
  orderId: string;
}

export function decide(order: OrderState): OrderPaid[] {
  if (order.status !== "PLACED") {
    throw invalidState(`only a PLACED order can be paid; this one is ${order.status}`, { status: order.status });
  }
  return [{ type: "OrderPaid", data: { orderId: order.id, customerId: order.customerId } }];
}

export const payOrder = defineCommand<PayOrder, OrderState, OrderPaid, { orderId: string }, OrderState>({
  name: "payOrder",
  roles: ["admin"],
  idempotencyKey: (input) => input.idempotencyKey,
  fingerprint: ({ idempotencyKey: _key, ...request }) => request,
  load: (input) => loadOrder(input.orderId, false),
  state: ([row], input, { actor }) => orderOf(row, input.orderId, actor),
  decide,
  stream: orderStream,
  save: (order, events, { now }) => [saveStatus(order, events, now)],
  result: (order) => ({ orderId: order.id }),
});
