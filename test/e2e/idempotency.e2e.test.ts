import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupFile } from "../support/app";
import {
  CreateProductDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  RestockProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

const stock = async (productId: string) =>
  (await t.db.sql<{ on_hand: number }>(`SELECT on_hand FROM "write".inventory WHERE product_id = $1`, [productId]))[0]!
    .on_hand;
const eventsOf = async (streamId: string) =>
  (await t.db.sql(`SELECT position FROM "write".events WHERE stream_id = $1`, [streamId])).length;

describe("retrying a command with its idempotency key", () => {
  it("restocks once for three concurrent requests with one key, and answers all three alike", async () => {
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku: "IDEM-R", name: "Retry me", priceCents: 100, initialStock: 1 },
    });
    const productId = createProduct.product!.id;
    const input = { productId, quantity: 5, idempotencyKey: "restock-1" };
    const answers = await Promise.all([1, 2, 3].map(() => t.admin.request(RestockProductDocument, { input })));
    for (const a of answers) expect(a.errors).toBeUndefined();
    expect(new Set(answers.map((a) => a.data!.restockProduct.position)).size).toBe(1);
    expect(await stock(productId)).toBe(6);
    expect(await eventsOf(productId)).toBe(2); // ProductCreated + one StockAdjusted

    // later, the same key again: the first outcome, nothing written
    const again = await t.admin.ok(RestockProductDocument, { input });
    expect(again.restockProduct.position).toBe(answers[0]!.data!.restockProduct.position);
    expect(await stock(productId)).toBe(6);
    // the same key for a different request is refused
    const other = await t.admin.request(RestockProductDocument, { input: { ...input, quantity: 7 } });
    expect(other.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    expect(await stock(productId)).toBe(6);
    // without a key, a retry is a new restock
    await t.admin.ok(RestockProductDocument, { input: { productId, quantity: 5 } });
    expect(await stock(productId)).toBe(11);
  });

  it("creates a product once for a retried create with a key, instead of a CONFLICT on its sku", async () => {
    const input = { sku: "IDEM-C", name: "Created once", priceCents: 100, initialStock: 3, idempotencyKey: "create-1" };
    const first = await t.admin.ok(CreateProductDocument, { input });
    const retry = await t.admin.ok(CreateProductDocument, { input });
    expect(retry.createProduct.position).toBe(first.createProduct.position);
    expect(retry.createProduct.product?.id).toBe(first.createProduct.product?.id);
  });

  it("keeps keys apart per command: one key may name a pay and a ship of the same order", async () => {
    const { createProduct } = await t.admin.ok(CreateProductDocument, {
      input: { sku: "IDEM-O", name: "Ordered", priceCents: 100, initialStock: 3 },
    });
    const { placeOrder } = await t.customer("idem-buyer").ok(PlaceOrderDocument, {
      input: { idempotencyKey: "o-1", lines: [{ productId: createProduct.product!.id, quantity: 1 }] },
    });
    const orderId = placeOrder.order!.id;
    const paid = await t.admin.ok(PayOrderDocument, { input: { orderId, idempotencyKey: "step" } });
    const paidAgain = await t.admin.ok(PayOrderDocument, { input: { orderId, idempotencyKey: "step" } }); // not INVALID_STATE: a replay
    expect(paidAgain.payOrder.position).toBe(paid.payOrder.position);
    const shipped = await t.admin.ok(ShipOrderDocument, { input: { orderId, idempotencyKey: "step" } });
    expect(shipped.shipOrder.order?.status).toBe("SHIPPED");
    expect(await eventsOf(orderId)).toBe(3);
  });
});
