import type { OrderShipped } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand } from "../../command";
import { moveStock } from "../../catalog/inventory";
import { onOrder, saveStatus, type OrderCommand, type OrderState } from "../order.state";

export type ShipOrder = OrderCommand;

/** The reserved stock leaves the warehouse. */
export function decide(order: OrderState): OrderShipped[] {
  if (order.status !== "PAID") {
    throw invalidState(`only a PAID order can be shipped; this one is ${order.status}`, { status: order.status });
  }
  return [{ type: "OrderShipped", data: { orderId: order.id, customerId: order.customerId, lines: order.lines } }];
}

export const shipOrder = defineCommand<ShipOrder, OrderState, OrderShipped, { orderId: string }, OrderState>({
  ...onOrder({ lockStock: true }),
  name: "shipOrder",
  roles: ["admin"],
  decide,
  save: (order, events, { now }) => [saveStatus(order, events, now), moveStock(events)],
});
