import type { OrderPaid } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { onOrder, saveStatus, type OrderCommand, type OrderState } from "../order.state";

export type PayOrder = OrderCommand;

export function decide(order: OrderState): OrderPaid[] {
  if (order.status !== "PLACED") {
    throw invalidState(`only a PLACED order can be paid; this one is ${order.status}`, { status: order.status });
  }
  return [{ type: "OrderPaid", data: { orderId: order.id, customerId: order.customerId } }];
}

export const payOrder = defineCommand<PayOrder, OrderState, OrderPaid, { orderId: string }, OrderState>({
  ...onOrder({ lockStock: false }),
  name: "payOrder",
  roles: ["admin"],
  decide,
  save: (order, events, { now }) => [saveStatus(order, events, now)],
});
