import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { comparePositions } from "../../src/shared/events";
import { eventually } from "../support/wait";
import { setupFile } from "../support/app";
import {
  CancelOrderDocument,
  CreateProductDocument,
  OrderDocument,
  PayOrderDocument,
  PlaceOrderDocument,
  ProductDocument,
  ShipOrderDocument,
} from "../../src/storefront/generated/graphql";

let t: Awaited<ReturnType<typeof setupFile>>;
beforeAll(async () => {
  t = await setupFile();
});
afterAll(async () => t?.teardown());

async function createProduct(stock: number, priceCents = 250) {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  const data = await t.admin.ok(CreateProductDocument, {
    input: { sku, name: `Product ${sku}`, priceCents, initialStock: stock },
  });
  return data.createProduct.product!;
}

const writeCounts = async () => {
  const [row] = await t.db.sql<{ events: string; orders: string; lines: string; keys: string; products: string }>(
    `SELECT (SELECT count(*) FROM "write".events) AS events, (SELECT count(*) FROM "write".orders) AS orders,
            (SELECT count(*) FROM "write".order_lines) AS lines, (SELECT count(*) FROM "write".command_keys) AS keys,
            (SELECT count(*) FROM "write".products) AS products`,
  );
  return row;
};

describe("placing orders concurrently", () => {
  it("accepts exactly 5 of 20 one-unit orders when 5 are in stock, and never oversells", async () => {
    const product = await createProduct(5);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.customer(`buyer-${i}`).request(PlaceOrderDocument, {
          input: { idempotencyKey: `k-${i}`, lines: [{ productId: product.id, quantity: 1 }] },
        }),
      ),
    );
    const accepted = results.filter((r) => r.data?.placeOrder);
    const rejected = results.filter((r) => r.errors?.[0]?.extensions?.code === "OUT_OF_STOCK");
    expect(accepted).toHaveLength(5);
    expect(rejected).toHaveLength(15);

    const [inventory] = await t.db.sql<{ on_hand: number; reserved: number; available: number }>(
      `SELECT on_hand, reserved, available FROM "write".inventory WHERE product_id = $1`,
      [product.id],
    );
    expect(inventory).toEqual({ on_hand: 5, reserved: 5, available: 0 });
    const events = await t.db.sql(
      `SELECT 1 FROM "write".events e, jsonb_array_elements(e.data->'lines') l
                                   WHERE e.type = 'OrderPlaced' AND l->>'productId' = $1`,
      [product.id],
    );
    expect(events).toHaveLength(5);
    // The orders' read-backs waited for the orders projection; the catalog follows on its own.
    const read = await eventually(
      async () => {
        const r = await t.anonymous.ok(ProductDocument, { id: product.id });
        return r.product?.unitsSold === 5 && r;
      },
      { what: "the catalog to apply the 5 orders" },
    );
    expect(read.product).toMatchObject({ available: 0, inStock: false, unitsSold: 5 });
  });

  it("turns 3 concurrent requests with one idempotency key into one order and one reservation", async () => {
    const product = await createProduct(10);
    const customer = t.customer("idem-customer");
    const input = { idempotencyKey: "same-key", lines: [{ productId: product.id, quantity: 2 }] };
    const results = await Promise.all([1, 2, 3].map(() => customer.request(PlaceOrderDocument, { input })));
    for (const r of results) expect(r.errors).toBeUndefined();
    const ids = new Set(results.map((r) => r.data!.placeOrder.order?.id));
    const positions = new Set(results.map((r) => r.data!.placeOrder.position));
    expect(ids.size).toBe(1);
    expect(positions.size).toBe(1);
    const orders = await t.db.sql(`SELECT id FROM "write".orders WHERE customer_id = 'idem-customer'`);
    expect(orders).toHaveLength(1);
    const [inventory] = await t.db.sql<{ reserved: number }>(
      `SELECT reserved FROM "write".inventory WHERE product_id = $1`,
      [product.id],
    );
    expect(inventory!.reserved).toBe(2);
  });

  it("answers a retry of an order that took the last units with that order, not OUT_OF_STOCK", async () => {
    // The duplicates read the stock only after the first one committed (their claim waits for
    // it), when none is left: the key, not the stock, must decide their answer.
    const product = await createProduct(2);
    const customer = t.customer("idem-last-units");
    const input = { idempotencyKey: "last-units", lines: [{ productId: product.id, quantity: 2 }] };
    const results = await Promise.all([1, 2, 3].map(() => customer.request(PlaceOrderDocument, { input })));
    for (const r of results) expect(r.errors).toBeUndefined();
    expect(new Set(results.map((r) => r.data!.placeOrder.order?.id)).size).toBe(1);
    const later = await customer.ok(PlaceOrderDocument, { input });
    expect(later.placeOrder.order?.id).toBe(results[0]!.data!.placeOrder.order?.id);
    const [inventory] = await t.db.sql<{ available: number; reserved: number }>(
      `SELECT available, reserved FROM "write".inventory WHERE product_id = $1`,
      [product.id],
    );
    expect(inventory).toEqual({ available: 0, reserved: 2 });
  });

  it("rejects a reused idempotency key with a different order as CONFLICT", async () => {
    const product = await createProduct(10);
    const customer = t.customer("key-reuser");
    await customer.ok(PlaceOrderDocument, {
      input: { idempotencyKey: "k1", lines: [{ productId: product.id, quantity: 1 }] },
    });
    const before = await writeCounts();
    const res = await customer.request(PlaceOrderDocument, {
      input: { idempotencyKey: "k1", lines: [{ productId: product.id, quantity: 3 }] },
    });
    expect(res.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    expect(await writeCounts()).toEqual(before);
  });

  it("lets two clients order the same products in opposite line order without a deadlock failure", async () => {
    const a = await createProduct(1000);
    const b = await createProduct(1000);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => {
        const lines =
          i % 2 === 0
            ? [
                { productId: a.id, quantity: 1 },
                { productId: b.id, quantity: 1 },
              ]
            : [
                { productId: b.id, quantity: 1 },
                { productId: a.id, quantity: 1 },
              ];
        return t.customer(`dl-${i}`).request(PlaceOrderDocument, { input: { idempotencyKey: `dl-${i}`, lines } });
      }),
    );
    for (const r of results) expect(r.errors).toBeUndefined();
    const rows = await t.db.sql<{ reserved: number }>(
      `SELECT reserved FROM "write".inventory WHERE product_id = ANY($1::uuid[])`,
      [[a.id, b.id]],
    );
    expect(rows.map((r) => r.reserved)).toEqual([16, 16]);
  });
});

describe("an order's life", () => {
  it("goes PLACED → PAID → SHIPPED; shipping consumes the reservation; a shipped order cannot be cancelled", async () => {
    const product = await createProduct(3, 199);
    const customer = t.customer("lifecycle");
    const placed = await customer.ok(PlaceOrderDocument, {
      input: { idempotencyKey: "life", lines: [{ productId: product.id, quantity: 2 }] },
    });
    const order = placed.placeOrder.order!;
    expect(order).toMatchObject({ status: "PLACED", totalCents: 398, itemCount: 2, customerId: "lifecycle" });
    expect(order.lines).toEqual([
      { productId: product.id, sku: product.sku, name: product.name, quantity: 2, unitPriceCents: 199 },
    ]);

    expect(
      (await customer.request(PayOrderDocument, { input: { orderId: order.id } })).errors?.[0]?.extensions?.code,
    ).toBe("FORBIDDEN");
    expect(
      (await t.admin.request(ShipOrderDocument, { input: { orderId: order.id } })).errors?.[0]?.extensions?.code,
    ).toBe("INVALID_STATE");
    expect((await t.admin.ok(PayOrderDocument, { input: { orderId: order.id } })).payOrder.order?.status).toBe("PAID");
    expect((await t.admin.ok(ShipOrderDocument, { input: { orderId: order.id } })).shipOrder.order?.status).toBe(
      "SHIPPED",
    );

    const before = await writeCounts();
    const cancel = await customer.request(CancelOrderDocument, { input: { orderId: order.id } });
    expect(cancel.errors?.[0]?.extensions?.code).toBe("INVALID_STATE");
    expect(await writeCounts()).toEqual(before);

    const [inventory] = await t.db.sql(
      `SELECT on_hand, reserved, available FROM "write".inventory WHERE product_id = $1`,
      [product.id],
    );
    expect(inventory).toEqual({ on_hand: 1, reserved: 0, available: 1 });
  });

  it("releases the stock when a PAID order is cancelled, by its customer", async () => {
    const product = await createProduct(2);
    const customer = t.customer("canceller");
    const { placeOrder } = await customer.ok(PlaceOrderDocument, {
      input: { idempotencyKey: "c", lines: [{ productId: product.id, quantity: 2 }] },
    });
    await t.admin.ok(PayOrderDocument, { input: { orderId: placeOrder.order!.id } });
    const cancelled = await customer.ok(CancelOrderDocument, { input: { orderId: placeOrder.order!.id } });
    expect(cancelled.cancelOrder.order?.status).toBe("CANCELLED");
    const [inventory] = await t.db.sql(
      `SELECT on_hand, reserved, available FROM "write".inventory WHERE product_id = $1`,
      [product.id],
    );
    expect(inventory).toEqual({ on_hand: 2, reserved: 0, available: 2 });
    // the catalog shows it again: the cancel answered once every read table it changes had it
    const read = await t.anonymous.ok(ProductDocument, { id: product.id });
    expect(read.product?.available).toBe(2);
  });

  it("hides another customer's order: NOT_FOUND for commands, null for the query", async () => {
    const product = await createProduct(2);
    const { placeOrder } = await t
      .customer("owner")
      .ok(PlaceOrderDocument, { input: { idempotencyKey: "o", lines: [{ productId: product.id, quantity: 1 }] } });
    const other = t.customer("someone-else");
    expect(
      (await other.request(CancelOrderDocument, { input: { orderId: placeOrder.order!.id } })).errors?.[0]?.extensions
        ?.code,
    ).toBe("NOT_FOUND");
    expect((await other.ok(OrderDocument, { id: placeOrder.order!.id })).order).toBeNull();
    expect((await t.admin.ok(OrderDocument, { id: placeOrder.order!.id })).order?.customerId).toBe("owner");
  });
});

describe("read-your-writes across read tables", () => {
  it("answers placeOrder once the catalog shows its stock too, not only once the order is projected", async () => {
    const product = await createProduct(5);
    // Hold the catalog's table: the catalog projection's batch waits for it; the orders projection,
    // which runs beside it, does not. (A table lock takes no transaction id, so the log's
    // gap-safe reading is not held back by it, as it would be by a row lock.)
    const blocker = new pg.Client({ connectionString: t.db.url });
    await blocker.connect();
    let placing: Promise<unknown> | undefined;
    try {
      await blocker.query("BEGIN");
      await blocker.query(`LOCK TABLE "read".products IN SHARE MODE`);
      const customer = `ryw-${randomUUID().slice(0, 8)}`;
      placing = t.customer(customer).ok(PlaceOrderDocument, {
        input: { idempotencyKey: randomUUID(), lines: [{ productId: product.id, quantity: 2 }] },
      });
      // The order is projected, and this instance has heard so...
      const order = await eventually(
        async () =>
          (
            await t.db.sql<{ txId: string; position: string }>(
              `SELECT applied_tx::text AS "txId", applied_pos::text AS position FROM "read".orders WHERE customer_id = $1`,
              [customer],
            )
          )[0],
        { what: "the order projected" },
      );
      const at = { txId: BigInt(order.txId), position: BigInt(order.position) };
      await eventually(() => comparePositions(t.app.services.feed.checkpoint("orders"), at) >= 0, {
        what: "the orders checkpoint heard",
      });
      // ...and still placeOrder has not answered: the catalog has not applied it. (A check that
      // something does not happen: half a second in which it would have answered before.)
      const first = await Promise.race([placing.then(() => "answered"), delay(500).then(() => "waiting")]);
      expect(first).toBe("waiting");
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      await blocker.end();
    }
    const { placeOrder } = (await placing) as { placeOrder: { order: { status: string } | null } };
    expect(placeOrder.order?.status).toBe("PLACED");
    expect((await t.anonymous.ok(ProductDocument, { id: product.id })).product).toMatchObject({
      available: 3,
      unitsSold: 2,
    });
  });
});

describe("event metadata", () => {
  it("records the actor and the request's correlation id on every event", async () => {
    const product = await createProduct(1);
    const correlationId = `corr-${randomUUID()}`;
    const res = await t
      .customer("meta-customer")
      .request(
        PlaceOrderDocument,
        { input: { idempotencyKey: "m", lines: [{ productId: product.id, quantity: 1 }] } },
        { "x-correlation-id": correlationId },
      );
    expect(res.errors).toBeUndefined();
    const [event] = await t.db.sql<{ metadata: { actor: unknown; correlationId: string; command: string } }>(
      `SELECT metadata FROM "write".events WHERE position = $1`,
      [res.data!.placeOrder.position],
    );
    expect(event!.metadata).toMatchObject({
      actor: { id: "meta-customer", role: "customer" },
      correlationId,
      command: "placeOrder",
    });
    const missing = await t.db.sql(`SELECT position FROM "write".events
      WHERE NOT (metadata ? 'correlationId') OR metadata->>'correlationId' = '' OR NOT (metadata->'actor' ? 'id') OR NOT (metadata->'actor' ? 'role')`);
    expect(missing).toEqual([]);
  });
});
