import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { setupFile } from "../support/app";
import { collect, metricOf } from "../support/client";
import { eventually } from "../support/wait";
import {
  CancelOrderDocument,
  CreateProductDocument,
  InventoryChangedDocument,
  OrderDocument,
  OrderUpdatedDocument,
  PayOrderDocument,
  PlaceOrderDocument,
} from "../../src/storefront/generated/graphql";

// Unpaid orders expire (CONTRACT.md, "Orders that are not paid expire"), in real time: with
// ORDER_PAYMENT_TIMEOUT_SECONDS=2 the API's own dispatcher cancels what is not paid.

const TIMEOUT_SECONDS = 2;
let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile({ orderPaymentTimeoutSeconds: TIMEOUT_SECONDS });
});
afterAll(async () => t?.teardown());

async function createProduct(stock: number) {
  const sku = `EX-${randomUUID().slice(0, 8)}`;
  const data = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents: 300, initialStock: stock },
  });
  return data.createProduct.product!;
}

const place = (customer: string, productId: string, quantity: number) =>
  t
    .customer(customer)
    .ok(PlaceOrderDocument, { input: { idempotencyKey: randomUUID(), lines: [{ productId, quantity }] } });

const metric = (name: string) => metricOf(t.url, name);

describe(`orders unpaid after ORDER_PAYMENT_TIMEOUT_SECONDS=${TIMEOUT_SECONDS}`, () => {
  it("are cancelled by the system: the order's subscriber sees CANCELLED / PAYMENT_TIMEOUT, the stock returns and is pushed", async () => {
    const product = await createProduct(10);
    const ws = t.anonymous.ws();
    const inventory = collect(ws, InventoryChangedDocument, { productIds: [product.id] });
    await eventually(() => t.app.services.feed.products.size > 0, { what: "the inventory subscription" });

    const { placeOrder } = await place("expiring", product.id, 10);
    const order = placeOrder.order!;
    expect(order.status).toBe("PLACED");
    expect(order.cancellationReason).toBeNull();
    expect(new Date(order.expiresAt!).getTime() - new Date(order.placedAt).getTime()).toBe(TIMEOUT_SECONDS * 1000);
    const ownerWs = t.customer("expiring").ws();
    const updates = collect(ownerWs, OrderUpdatedDocument, { orderId: order.id, after: order.position });
    await eventually(() => t.app.services.feed.orders.size > 0, { what: "the order subscription" });

    const expired = await eventually(
      () => updates.results.map((r) => r.data?.orderUpdated).find((o) => o?.status === "CANCELLED"),
      { timeoutMs: 15_000, what: "the order to expire" },
    );
    expect(expired).toMatchObject({ cancellationReason: "PAYMENT_TIMEOUT", expiresAt: null });
    expect(new Date(expired.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(order.expiresAt!).getTime());
    await eventually(
      () =>
        inventory.results.some(
          (r) => r.data?.inventoryChanged.available === 10 && r.data.inventoryChanged.stockLevel === "IN_STOCK",
        ),
      { what: "the stock to come back to the inventory subscriber" },
    );
    expect(inventory.results[0]!.data!.inventoryChanged.stockLevel).toBe("OUT_OF_STOCK"); // the order's reservation first

    // Too late for the customer and the admin.
    const before = await t.db.sql(`SELECT count(*) FROM "write".events`);
    const pay = await t.admin.request(PayOrderDocument, { input: { orderId: order.id } });
    const cancel = await t.customer("expiring").request(CancelOrderDocument, { input: { orderId: order.id } });
    expect(pay.errors?.[0]?.extensions?.code).toBe("INVALID_STATE");
    expect(cancel.errors?.[0]?.extensions?.code).toBe("INVALID_STATE");
    expect(await t.db.sql(`SELECT count(*) FROM "write".events`)).toEqual(before);

    expect(await metric("shop_order_expiry_leader")).toBe(1);
    expect(await metric("shop_order_expiries_total")).toBeGreaterThanOrEqual(1);
    expect(await metric("shop_order_deadlines_due")).toBe(0);
    await Promise.all([ws.dispose(), ownerWs.dispose()]);
  });

  it("leave paid and cancelled orders alone (their deadline is cleared)", async () => {
    const product = await createProduct(10);
    const paid = (await place("payer", product.id, 1)).placeOrder.order!;
    const paidRow = (await t.admin.ok(PayOrderDocument, { input: { orderId: paid.id } })).payOrder.order!;
    const cancelled = (await place("payer", product.id, 1)).placeOrder.order!;
    const cancelledRow = (await t.customer("payer").ok(CancelOrderDocument, { input: { orderId: cancelled.id } }))
      .cancelOrder.order!;
    expect(paidRow).toMatchObject({ status: "PAID", expiresAt: null, cancellationReason: null });
    expect(cancelledRow).toMatchObject({ status: "CANCELLED", expiresAt: null, cancellationReason: "CUSTOMER" });

    // An order placed after them expires; by then their deadlines are long past.
    const later = (await place("payer", product.id, 1)).placeOrder.order!;
    await eventually(async () => (await t.admin.ok(OrderDocument, { id: later.id })).order?.status === "CANCELLED", {
      timeoutMs: 15_000,
      what: "the later order to expire",
    });
    expect((await t.admin.ok(OrderDocument, { id: paid.id })).order).toMatchObject({ status: "PAID" });
    expect((await t.admin.ok(OrderDocument, { id: cancelled.id })).order).toMatchObject({
      status: "CANCELLED",
      cancellationReason: "CUSTOMER",
    });
    const events = await t.db.sql<{ stream_id: string; type: string }>(
      `SELECT stream_id::text AS stream_id, type FROM "write".events WHERE stream_id = ANY($1::uuid[]) ORDER BY position`,
      [[paid.id, cancelled.id]],
    );
    expect(events.map((e) => e.type)).toEqual(["OrderPlaced", "OrderPaid", "OrderPlaced", "OrderCancelled"]);
  });
});
