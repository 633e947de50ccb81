import { describe, it } from "vitest";
import { systemActor } from "../../src/shared/auth";
import { cancelOrder } from "../../src/write/orders/commands/cancelOrder";
import { expireOrder } from "../../src/write/orders/commands/expireOrder";
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
const DEADLINE = new Date("2026-12-01T12:15:00.000Z");
const anOrder = (status: OrderStatus, version = 3): OrderState => ({
  id: ORDER_ID,
  customerId: "alice",
  status,
  version,
  lines: LINES,
  expiresAt: status === "PLACED" ? DEADLINE : null,
});
const before = new Date(DEADLINE.getTime() - 1);
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
const cancel = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(cancelOrder, order, cmd, before));
const cancelAsAdmin = decideSpec((order: OrderState, cmd: { orderId: string }) =>
  decided(cancelOrder, order, cmd, before, { kind: "user", id: "ops", role: "admin" }),
);
const pay = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(payOrder, order, cmd, before));
const payAt = (now: Date) =>
  decideSpec((order: OrderState, cmd: { orderId: string }) => decided(payOrder, order, cmd, now));
const expireAt = (now: Date) =>
  decideSpec((order: OrderState, cmd: { orderId: string }) => decided(expireOrder, order, cmd, now, systemActor));
const ship = decideSpec((order: OrderState, cmd: { orderId: string }) => decided(shipOrder, order, cmd));
const cmd = { orderId: ORDER_ID };

describe("cancelling an order (decide)", () => {
  it.each(["PLACED", "PAID"] as const)("cancels a %s order and releases every line", (status) => {
    cancel(anOrder(status))
      .when(cmd)
      .then(event("OrderCancelled", 4, { previousStatus: status, lines: LINES, reason: "CUSTOMER" }));
  });

  it("records an admin's cancellation as ADMIN", () => {
    cancelAsAdmin(anOrder("PAID"))
      .when(cmd)
      .then(event("OrderCancelled", 4, { previousStatus: "PAID", lines: LINES, reason: "ADMIN" }));
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

  it("refuses to pay once the payment deadline has passed (the order is the expiry's), as INVALID_STATE", () => {
    payAt(DEADLINE)(anOrder("PLACED", 1))
      .when(cmd)
      .thenRejects("INVALID_STATE", { status: "PLACED", expiresAt: DEADLINE.toISOString() });
  });
});

describe("expiring an order (decide)", () => {
  it("cancels a PLACED order at its deadline with reason PAYMENT_TIMEOUT, releasing every line", () => {
    expireAt(DEADLINE)(anOrder("PLACED", 1))
      .when(cmd)
      .then(event("OrderCancelled", 2, { previousStatus: "PLACED", lines: LINES, reason: "PAYMENT_TIMEOUT" }));
  });

  it("refuses an order whose deadline has not passed, as INVALID_STATE", () => {
    expireAt(before)(anOrder("PLACED", 1)).when(cmd).thenRejects("INVALID_STATE", { status: "PLACED" });
  });

  it("refuses an order placed before deadlines existed (none set), as INVALID_STATE", () => {
    expireAt(DEADLINE)({ ...anOrder("PLACED", 1), expiresAt: null })
      .when(cmd)
      .thenRejects("INVALID_STATE", { status: "PLACED" });
  });

  it.each(["PAID", "SHIPPED", "CANCELLED"] as const)("refuses a %s order as INVALID_STATE", (status) => {
    expireAt(DEADLINE)(anOrder(status)).when(cmd).thenRejects("INVALID_STATE", { status });
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
