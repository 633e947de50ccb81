import type { OrderCancelled } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand, type CommandContext } from "../../command";
import { moveStock } from "../../catalog/inventory";
import { cancellation, onOrder, saveStatus, type OrderCommand, type OrderState } from "../order.state";

export type CancelOrder = OrderCommand;

/** Cancelling is allowed until the order ships; it releases the reserved stock. */
export function decide(order: OrderState, _input: unknown, { actor }: Pick<CommandContext, "actor">): OrderCancelled[] {
  if (order.status !== "PLACED" && order.status !== "PAID") {
    throw invalidState(`an order that is ${order.status} cannot be cancelled`, { status: order.status });
  }
  return [cancellation(order, actor.role === "admin" ? "ADMIN" : "CUSTOMER")];
}

export const cancelOrder = defineCommand<CancelOrder, OrderState, OrderCancelled, { orderId: string }, OrderState>({
  ...onOrder({ lockStock: true }),
  name: "cancelOrder",
  roles: ["customer", "admin"],
  decide,
  save: (order, events, { now }) => [saveStatus(order, events, now), moveStock(events)],
});
