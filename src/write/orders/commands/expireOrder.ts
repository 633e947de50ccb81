import type { OrderCancelled } from "../../../events";
import { invalidState } from "../../../shared/errors";
import { defineCommand, type CommandContext } from "../../command";
import { moveStock } from "../../catalog/inventory";
import { cancellation, onOrder, paymentOverdue, saveStatus, type OrderState } from "../order.state";

export interface ExpireOrder {
  orderId: string;
}

/**
 * The system's command when an order's payment deadline passes (dispatched by the order expiry,
 * src/process/orderExpiry.ts): the order is cancelled with reason PAYMENT_TIMEOUT and its
 * stock released. Only a PLACED order past its deadline: one paid or cancelled meanwhile, or
 * not yet due, is INVALID_STATE, and nothing is appended.
 */
export function decide(order: OrderState, _input: unknown, { now }: Pick<CommandContext, "now">): OrderCancelled[] {
  if (!paymentOverdue(order, now)) {
    throw invalidState(
      order.status === "PLACED"
        ? `the order's payment deadline has not passed (${order.expiresAt?.toISOString() ?? "none"})`
        : `an order that is ${order.status} does not expire`,
      { status: order.status },
    );
  }
  return [cancellation(order, "PAYMENT_TIMEOUT")];
}

export const expireOrder = defineCommand<ExpireOrder, OrderState, OrderCancelled, { orderId: string }, OrderState>({
  ...onOrder({ lockStock: true }),
  name: "expireOrder",
  roles: ["system"],
  // One key per order: a second dispatch of the same expiry (another instance, a retry after a
  // crash) answers as the first did and appends nothing.
  idempotencyKey: (input) => `expire:${input.orderId}`,
  fingerprint: (input) => input,
  decide,
  save: (order, events, { now }) => [saveStatus(order, events, now), moveStock(events)],
});
