import type { OrderPaid } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import type { CommandContext } from "../../command";
import { onOrder, paymentOverdue, saveStatus, type OrderCommand, type OrderState } from "../order.state";

export type PayOrder = OrderCommand;

export function decide(order: OrderState, _input: unknown, { now }: Pick<CommandContext, "now">): OrderPaid[] {
  if (order.status !== "PLACED") {
    throw invalidState(`only a PLACED order can be paid; this one is ${order.status}`, { status: order.status });
  }
  // Past the deadline the order is the expiry's: paying it now would race the cancellation.
  if (paymentOverdue(order, now)) {
    throw invalidState(`the order's payment deadline passed at ${order.expiresAt!.toISOString()}`, {
      status: order.status,
      expiresAt: order.expiresAt!.toISOString(),
    });
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
