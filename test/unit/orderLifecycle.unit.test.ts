import { describe, it } from "vitest";
import { cancelOrder } from "../../src/write/orders/commands/cancelOrder";
import { payOrder } from "../../src/write/orders/commands/payOrder";
import { shipOrder } from "../../src/write/orders/commands/shipOrder";
import type { OrderState } from "../../src/write/orders/order.state";
import type { OrderStatus } from "../../src/events";
import { decided, decideSpec } from "../support/given";

const ORDER_ID = "00000000-0000-4000-8000-0000000000aa";
const LINES = [
  { productId: "00000000-0000-4000-8000-000000000001", quantity: 2 },
  { productId: "00000000-0000-4000-8000-000000000002", quantity: 1 },
];
const anOrder = (status: OrderStatus, version = 3): OrderState => ({
  id: ORDER_ID,
  customerId: "alice",
  status,
  version,
  lines: LINES,
});
const event = (type: string, version: number, data: Record<string, unknown>) => [
  {
    streamId: ORDER_ID,
    streamType: "order",
    streamVersion: version,
    type,
    data: { orderId: ORDER_ID, customerId: "alice", ...data },
  },
];

// The order commands decide from the loaded order alone; the command names only the order.
const cancel = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(cancelOrder, order, cmd));
const pay = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(payOrder, order, cmd));
const ship = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(shipOrder, order, cmd));
const cmd = { orderId: ORDER_ID };

describe("cancelling an order (decide)", () => {
  it.each(["PLACED", "PAID"] as const)("cancels a %s order and releases every line", (status) => {
    cancel(anOrder(status))
      .when(cmd)
      .then(event("OrderCancelled", 4, { previousStatus: status, lines: LINES }));
  });

  it.each(["SHIPPED", "CANCELLED"] as const)("refuses to cancel a %s order as INVALID_STATE", (status) => {
    cancel(anOrder(status)).when(cmd).thenRejects("INVALID_STATE", { status });
  });
});

describe("paying an order (decide)", () => {
  it("moves a PLACED order to PAID as the next stream version", () => {
    pay(anOrder("PLACED", 1))
      .when(cmd)
      .then(event("OrderPaid", 2, {}));
  });

  it.each(["PAID", "SHIPPED", "CANCELLED"] as const)("refuses to pay a %s order as INVALID_STATE", (status) => {
    pay(anOrder(status)).when(cmd).thenRejects("INVALID_STATE", { status });
  });
});

describe("shipping an order (decide)", () => {
  it("ships a PAID order with its lines (the reservation leaves the warehouse)", () => {
    ship(anOrder("PAID", 2))
      .when(cmd)
      .then(event("OrderShipped", 3, { lines: LINES }));
  });

  it.each(["PLACED", "SHIPPED", "CANCELLED"] as const)("refuses to ship a %s order as INVALID_STATE", (status) => {
    ship(anOrder(status)).when(cmd).thenRejects("INVALID_STATE", { status });
  });
});
